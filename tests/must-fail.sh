#!/usr/bin/env bash
# Proves that a test fails, and for the stated reason, when what it needs is
# missing: runs COMMAND and passes only if it exits non-zero AND its output
# matches PATTERN (an extended regex). A test that skipped or passed instead
# would make this check fail.
#   must-fail.sh PATTERN COMMAND [ARG...]
set -uo pipefail
pattern=$1
shift
out=$("$@" 2>&1)
status=$?
if [[ $status == 0 ]]; then
    printf '%s\n' "$out" | tail -20
    echo "must-fail: \"$*\" exited 0; it must fail" >&2
    exit 1
fi
if ! grep -Eq -- "$pattern" <<<"$out"; then
    printf '%s\n' "$out" | tail -20
    echo "must-fail: exit $status, but the output does not say /$pattern/" >&2
    exit 1
fi
echo "must-fail: exit $status, and the output says /$pattern/ (as it must)"
