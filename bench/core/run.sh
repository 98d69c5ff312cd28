#!/usr/bin/env bash
# The core's own ceiling: bench-dunno (the full proto/ server with a decider
# that answers DUNNO, decision log on) against policy-reference-server (a
# do-nothing epoll server with no parsing worth the name), same load, same run.
#   bench/core/run.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
seconds=${2:-10}
conns=${3:-64}
load=$build/bench/policy-load
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on $1" >&2; return 1
}

ref_port=$(free_port)
"$build/bench/policy-reference-server" --listen "inet:127.0.0.1:$ref_port" & pids+=($!)
dunno_port=$(free_port)
"$build/bench/dunno/bench-dunno" --listen "inet:127.0.0.1:$dunno_port" 2>"$work/dunno.log" & pids+=($!)
wait_port "$ref_port"; wait_port "$dunno_port"

run() { "$load" --connect "inet:127.0.0.1:$1" --connections "$conns" --duration "$seconds" --json 2>/dev/null; }
ref=$(run "$ref_port")
ours=$(run "$dunno_port")
/usr/bin/python3 - "$ref" "$ours" <<'PY'
import json, sys
ref, ours = (json.loads(a) for a in sys.argv[1:3])
print(f"{'server':<28}{'req/s':>10}{'p50 us':>9}{'p99 us':>9}{'max us':>9}")
for name, r in (("policy-reference-server", ref), ("bench-dunno (proto/)", ours)):
    print(f"{name:<28}{r['rps']:>10.0f}{r['p50_us']:>9.0f}{r['p99_us']:>9.0f}{r['max_us']:>9.0f}")
print(f"ratio bench-dunno / reference: {ours['rps'] / ref['rps']:.2f}")
PY
