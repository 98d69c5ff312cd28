#!/bin/bash
# policyd-greylist and policyd-ratelimit on a 3-master Redis Cluster (3+3,
# from Debian's redis-server) against the same daemons on one Redis, in the
# same run, driven by policy-load: requests/s, p99 and the cluster's share of
# the single-Redis figure (goal: at least 60%). Both Redis setups reach the
# daemons by TCP on 127.0.0.1, so the comparison is of topologies, not of
# transports. Not a CI gate.
#
#   bench/redis-cluster/run.sh [BUILD_DIR]
#
# Environment: CONNECTIONS (64), DURATION (10 s measured), WARMUP (2 s),
# ROUNDS (3; medians). Everything lives in a temp dir on free ports and is
# stopped by PID on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
connections=${CONNECTIONS:-64}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
rounds=${ROUNDS:-3}
greylist=$build/policyd-greylist/policyd-greylist
ratelimit=$build/policyd-ratelimit/policyd-ratelimit
load=$build/bench/policy-load
for f in "$greylist" "$ratelimit" "$load"; do
    [[ -x $f ]] || { echo "missing $f" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/redis-cluster-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
. "$here/../lib.sh"

redis_node() {  # PORT [cluster args...]
    local port=$1
    shift
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$tmp" \
        --logfile "$tmp/redis-$port.log" "$@" &
    pids+=($!)
}

single=$(free_port)
redis_node "$single"
nodes=()
for i in 1 2 3 4 5 6; do
    port=$(free_port)
    bus=$(free_port)
    redis_node "$port" --cluster-enabled yes --cluster-port "$bus" \
        --cluster-config-file "$tmp/nodes-$port.conf" --cluster-node-timeout 2000 \
        --cluster-require-full-coverage no
    nodes+=("127.0.0.1:$port")
done
wait_port "$single"
for n in "${nodes[@]}"; do wait_port "${n#*:}"; done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$tmp/create.log" 2>&1
for _ in $(seq 200); do
    ok=1
    for n in "${nodes[@]}"; do
        redis-cli -h 127.0.0.1 -p "${n#*:}" cluster info | grep -q cluster_state:ok || ok=0
    done
    [[ $ok == 1 ]] && break
    sleep 0.1
done
cluster_url="redis-cluster://${nodes[0]},${nodes[1]},${nodes[2]}"

echo '{"delay": 1, "log_decisions": false, "whitelist_clients": []}' >"$tmp/greylist.json"
cat >"$tmp/ratelimit.json" <<JSON
{"log_decisions": false, "rules": [
  {"name": "user_rcpt", "key": ["sasl_username"], "count": "recipients", "limit": 100, "window": 60}]}
JSON
declare -A port
start() {  # NAME BINARY CONFIG URL
    port[$1]=$(free_port)
    "$2" --config "$3" --redis "$4" --listen "inet:127.0.0.1:${port[$1]}" 2>"$tmp/$1.log" &
    pids+=($!)
    wait_port "${port[$1]}"
}
start greylist-single "$greylist" "$tmp/greylist.json" "redis://127.0.0.1:$single"
start greylist-cluster "$greylist" "$tmp/greylist.json" "$cluster_url"
start ratelimit-single "$ratelimit" "$tmp/ratelimit.json" "redis://127.0.0.1:$single"
start ratelimit-cluster "$ratelimit" "$tmp/ratelimit.json" "$cluster_url"

run() {  # NAME ROUND ARGS...
    local name=$1 round=$2
    shift 2
    "$load" --connect "inet:127.0.0.1:${port[$name]}" --connections "$connections" \
        --duration "$duration" --warmup "$warmup" --json "$@" 2>"$tmp/$name.load.log" \
        >"$tmp/$name.$round.json"
}
echo "policy-load: $connections connections, ${duration}s measured, $rounds rounds, $(nproc) cores;" \
     "one Redis vs a 3+3 cluster, all on this host"
for round in $(seq "$rounds"); do
    for topo in single cluster; do
        run "greylist-$topo" "$round" --unique
        run "ratelimit-$topo" "$round" --profile rcpt --sasl-users 1000 --seed 42
    done
done

/usr/bin/python3 - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def med(name, key):
    return statistics.median(json.load(open(f"{tmp}/{name}.{i}.json"))[key] for i in range(1, rounds + 1))
print(f"{'daemon':<20} {'req/s':>9} {'p99 ms':>8} {'errors':>7}")
for d in ("greylist", "ratelimit"):
    for t in ("single", "cluster"):
        n = f"{d}-{t}"
        errors = sum(json.load(open(f"{tmp}/{n}.{i}.json"))["errors"] for i in range(1, rounds + 1))
        print(f"{n:<20} {med(n, 'rps'):>9.0f} {med(n, 'p99_us') / 1000:>8.2f} {errors:>7}")
    share = med(f"{d}-cluster", "rps") / med(f"{d}-single", "rps")
    print(f"{d}: cluster / single = {share:.0%} (goal >= 60%)")
PY
