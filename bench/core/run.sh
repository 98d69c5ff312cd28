#!/usr/bin/env bash
# The core's own ceiling: bench-dunno (the full proto/ server with a decider
# that answers DUNNO, decision log on) against policy-reference-server (a
# do-nothing epoll server with no parsing worth the name), same load, same run.
# Rounds alternate between the two servers and the medians are reported, so
# a noisy neighbour on a shared machine hits both alike.
#   bench/core/run.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
seconds=${2:-10}
conns=${3:-64}
rounds=${4:-5}
load=$build/bench/policy-load
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

. "$(dirname "$0")/../lib.sh"

pin_server=() pin_load=()
if [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 1) pin_load=(taskset -c 0); fi

ref_port=$(free_port)
# Server on one core, load generator on the other: the scheduler then adds no
# noise of its own to the comparison.
"${pin_server[@]}" "$build/bench/policy-reference-server" --listen "inet:127.0.0.1:$ref_port" & pids+=($!)
dunno_port=$(free_port)
"${pin_server[@]}" "$build/bench/dunno/bench-dunno" --listen "inet:127.0.0.1:$dunno_port" 2>"$work/dunno.log" & pids+=($!)
wait_port "$ref_port"; wait_port "$dunno_port"

run() { "${pin_load[@]}" "$load" --connect "inet:127.0.0.1:$1" --connections "$conns" --duration "$seconds" --json 2>/dev/null; }
for ((r = 0; r < rounds; r++)); do
  run "$ref_port" >>"$work/ref.jsonl"
  run "$dunno_port" >>"$work/ours.jsonl"
done
/usr/bin/python3 - "$work/ref.jsonl" "$work/ours.jsonl" "$conns" "$seconds" <<'PY'
import json, statistics, sys
ref, ours = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
med = lambda runs, k: statistics.median(r[k] for r in runs)
print(f"{sys.argv[3]} connections, {len(ref)} rounds of {sys.argv[4]} s each, medians")
print(f"{'server':<28}{'req/s':>10}{'p50 us':>9}{'p99 us':>9}{'max us':>9}")
for name, runs in (("policy-reference-server", ref), ("bench-dunno (proto/)", ours)):
    print(f"{name:<28}{med(runs, 'rps'):>10.0f}{med(runs, 'p50_us'):>9.0f}"
          f"{med(runs, 'p99_us'):>9.0f}{med(runs, 'max_us'):>9.0f}")
ratios = [o["rps"] / r["rps"] for r, o in zip(ref, ours)]
print(f"ratio bench-dunno / reference: median {statistics.median(ratios):.2f} "
      f"(rounds: {' '.join(f'{x:.2f}' for x in ratios)})")
PY
