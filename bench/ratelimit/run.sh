#!/bin/bash
# Side-by-side benchmark of policyd-ratelimit against the Debian peers
# policyd-rate-limit (sqlite backend) and postfwd2 (a rate() rule), all
# limiting recipients per SASL user, driven by the same load generator in
# the same run: policy-load, RCPT requests, 1000 distinct SASL users.
#
#   bench/ratelimit/run.sh [BUILD_DIR]
#
# BUILD_DIR holds policyd-ratelimit and bench/policy-load (default: build).
# Environment: CONNECTIONS (64), USERS (1000), DURATION (10 s measured),
# WARMUP (2 s), ROUNDS (3: each round runs every daemon once, in turn; the
# figures are the medians over the rounds, so a burst of other load on the
# machine hits all three alike), LIMIT (recipients per user per WINDOW; 100), WINDOW (60 s),
# REDIS_TRANSPORT (unix: Redis on this host through its socket; tcp: through
# 127.0.0.1). Every daemon serves the policy protocol on 127.0.0.1 (TCP).
# Everything listens on 127.0.0.1 (free ports) and lives in temp dirs; every
# process started here is stopped by PID (postfwd2 by its process group) on
# exit. The peers run as root here (as a benchmark on a throwaway machine).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
connections=${CONNECTIONS:-64}
users=${USERS:-1000}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
rounds=${ROUNDS:-3}
limit=${LIMIT:-100}
window=${WINDOW:-60}
redis_transport=${REDIS_TRANSPORT:-unix}

ours=$build/policyd-ratelimit/policyd-ratelimit
load=$build/bench/policy-load
for f in "$ours" "$load"; do
    [[ -x $f ]] || { echo "missing $f: cmake --build $build --target policyd-ratelimit policy-load" >&2; exit 1; }
done
for p in redis-server policyd-rate-limit postfwd2; do
    command -v "$p" >/dev/null || { echo "missing $p (deploy/install-deps.sh with WITH_BENCH_PEERS=1)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/ratelimit-bench.XXXXXX)
# policyd-rate-limit's sqlite database: on disk, as Debian ships it
# (/var/lib/policyd-rate-limit); it commits on every request, so its speed is
# the disk's fsync. PEER_SQLITE_DIR=/dev/shm shows it on tmpfs instead.
sqlite_dir=$(mktemp -d "${PEER_SQLITE_DIR:-/var/tmp}/ratelimit-bench-sqlite.XXXXXX")
pids=()
postfwd_pgid=
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    [[ -n $postfwd_pgid ]] && kill -TERM -- "-$postfwd_pgid" 2>/dev/null || true
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -n $postfwd_pgid ]]; then
        for _ in $(seq 100); do kill -0 -- "-$postfwd_pgid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$postfwd_pgid" 2>/dev/null || true
    fi
    rm -rf "$tmp" "$sqlite_dir"
}
trap cleanup EXIT

. "$(dirname "$0")/../lib.sh"
# On failure show the daemons' logs before giving up.
wait_or_show_logs() {
    wait_port "$1" && return 0
    echo "logs in $tmp:" >&2
    tail -n 20 "$tmp"/*.log >&2 || true
    exit 1
}

# --- redis and policyd-ratelimit --------------------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
    --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
wait_or_show_logs "$redis_port"
if [[ $redis_transport == unix ]]; then redis_url="unix:$tmp/redis.sock"
else redis_url="redis://127.0.0.1:$redis_port"; fi

ours_port=$(free_port)
cat >"$tmp/ours.json" <<EOF
{
  "log_decisions": false,
  "rules": [
    {"name": "user_rcpt", "key": ["sasl_username"], "count": "recipients",
     "limit": $limit, "window": $window}
  ]
}
EOF
"$ours" --config "$tmp/ours.json" --redis "$redis_url" \
    --listen "inet:127.0.0.1:$ours_port" 2>"$tmp/ours.log" &
pids+=($!)
wait_or_show_logs "$ours_port"

# --- policyd-rate-limit: Debian's defaults, sqlite, limit per SASL user ------
prl_port=$(free_port)
cat >"$tmp/prl.yaml" <<EOF
debug: False
user: "root"
group: "root"
pidfile: "$tmp/prl.pid"
backend: 0
sqlite_config:
    database: "$sqlite_dir/prl.sqlite3"
SOCKET: ["127.0.0.1", $prl_port]
limits:
    - [$limit, $window]
limits_by_id: {}
limit_by_sasl: True
limit_by_sender: False
limit_by_ip: False
limited_networks: []
success_action: "dunno"
fail_action: "defer_if_permit Rate limit reach, retry later"
db_error_action: "dunno"
report: False
EOF
policyd-rate-limit --file "$tmp/prl.yaml" >"$tmp/prl.log" 2>&1 &
pids+=($!)
wait_or_show_logs "$prl_port"

# --- postfwd2 with a rate() rule per SASL user ------------------------------
pf_port=$(free_port)
pf_cache_port=$(free_port)
cat >"$tmp/postfwd.cf" <<EOF
id=USER_RCPT; sasl_username=~/./; action=rate(sasl_username/$limit/$window/450 4.7.1 Rate limit exceeded)
EOF
# It daemonizes; its master, cache and policy children share one process group.
postfwd2 -f "$tmp/postfwd.cf" --server_socket "tcp:127.0.0.1:$pf_port" \
    --cache_socket "tcp:127.0.0.1:$pf_cache_port" --pidfile "$tmp/postfwd.pid" \
    -u nobody -g nogroup --perfmon --max_servers "$connections" >"$tmp/postfwd.log" 2>&1
postfwd_pgid=$(cat "$tmp/postfwd.pid")
wait_or_show_logs "$pf_port"

# --- the runs ----------------------------------------------------------------
run_load() {  # NAME PORT ROUND
    "$load" --connect "inet:127.0.0.1:$2" --connections "$connections" --duration "$duration" \
        --warmup "$warmup" --profile rcpt --sasl-users "$users" --seed 42 --json \
        2>"$tmp/$1.load.log" >"$tmp/$1.$3.json" || {
        echo "policy-load against $1 failed:" >&2; cat "$tmp/$1.load.log" >&2; exit 1; }
}
echo "policy-load: $connections connections, $users SASL users, RCPT," \
     "${duration}s measured; limit $limit recipients per user per ${window}s;" \
     "policyd-ratelimit reaches Redis by $redis_transport;" \
     "policyd-rate-limit's sqlite in $(df --output=fstype "$sqlite_dir" | tail -1) $sqlite_dir"
for round in $(seq "$rounds"); do
    run_load policyd-ratelimit "$ours_port" "$round"
    run_load policyd-rate-limit "$prl_port" "$round"
    run_load postfwd2 "$pf_port" "$round"
done

/usr/bin/python3 - "$tmp" "$rounds" <<'EOF'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
names = ["policyd-ratelimit", "policyd-rate-limit", "postfwd2"]
runs = {n: [json.load(open(f"{tmp}/{n}.{i}.json")) for i in range(1, rounds + 1)] for n in names}
r = {}
for n in names:
    r[n] = {k: statistics.median(x[k] for x in runs[n]) for k in ("rps", "p50_us", "p99_us")}
    r[n]["errors"] = sum(x["errors"] for x in runs[n])
print(f"medians of {rounds} rounds:")
print(f"{'daemon':<20} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  req/s of each round")
for n in names:
    x = r[n]
    each = " ".join(f"{y['rps']:.0f}" for y in runs[n])
    print(f"{n:<20} {x['rps']:>10.0f} {x['p50_us']/1000:>8.2f} {x['p99_us']/1000:>8.2f} {x['errors']:>7}  {each}")
ours = r["policyd-ratelimit"]
ok = True
for peer in names[1:]:
    ratio = ours["rps"] / r[peer]["rps"] if r[peer]["rps"] else float("inf")
    verdict = "ok" if ratio >= 20 else "BELOW TARGET"
    ok = ok and ratio >= 20
    print(f"policyd-ratelimit / {peer}: {ratio:.1f}x (target >= 20x: {verdict})")
p99 = ours["p99_us"] / 1000
print(f"policyd-ratelimit p99 {p99:.2f} ms (target < 2 ms: {'ok' if p99 < 2 else 'ABOVE TARGET'})")
sys.exit(0 if ok and p99 < 2 else 3)
EOF
