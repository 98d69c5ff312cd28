#!/usr/bin/env bash
# The RFC 7208 conformance suite (spf-suite) against the built policyd-spf:
# the suite serves each scenario's DNS in a network namespace of its own and
# restarts the daemon inside it per scenario. Passes only when every test of
# the suite passes (no allow-fail list). Needs root (ip netns, port 53).
#   run-conformance.sh DAEMON SUITE_DIR CONFIG [EXPECTED_PASSED] [suite options...]
set -euo pipefail
daemon=$1 suite_dir=$2 config=$3 expected=${4:-203}
shift $(( $# < 4 ? $# : 4 ))

[[ -x $daemon ]] || { echo "FAIL: no daemon at $daemon" >&2; exit 1; }
[[ -f $suite_dir/spf_suite.py ]] || { echo "FAIL: no spf-suite at $suite_dir" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "FAIL: the suite needs root for its network namespace" >&2; exit 1; }

# A namespace name of our own, so parallel runs never share one; the port is
# inside that namespace, where nothing else listens.
ns="spfc$$"
port=10034
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cd "$suite_dir"
set +e
/usr/bin/python3 spf_suite.py --impl policy --netns "$ns" --test-timeout 20 \
    --policy-cmd "$daemon --config $config --listen inet:127.0.0.1:$port" \
    --policy-addr "127.0.0.1:$port" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
if [[ $status != 0 || $summary != "$expected passed, 0 failed" ]]; then
    echo "FAIL: expected \"$expected passed, 0 failed\", got \"${summary:-no summary}\" (exit $status)" >&2
    exit 1
fi
echo "OK: $summary"
