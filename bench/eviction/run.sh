#!/usr/bin/env bash
# bench/eviction/run.sh: a local process fills each daemon's connection table
# with idle connections from 127.0.0.1, several times over; then a new client
# (as Postfix would be) connects and asks. Printed per daemon: how many of the
# held connections the daemon closed, the new client's answer time (median
# and max of PROBES) or its failures, and the daemon's RSS before and after.
#
#   bench/eviction/run.sh [BUILD_DIR]        (default: build)
#
# Needs policyd-greylist, policyd-ratelimit, policyd-spf, delivery-maildir
# and conn-hold built in BUILD_DIR, and redis-server. Everything runs on free
# loopback ports in a temp dir and is stopped by PID.
#
# Environment: MAX_CONNECTIONS (1000, the default of every daemon), HOLD
# (5000 idle connections, 5 tables' worth), PROBES (20).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
[[ $build = /* ]] || build=$root/$build
max=${MAX_CONNECTIONS:-1000}
hold=${HOLD:-5000}
probes=${PROBES:-20}

hold_tool=$build/bench/conn-hold
for f in "$hold_tool" "$build/policyd-greylist/policyd-greylist" \
         "$build/policyd-ratelimit/policyd-ratelimit" "$build/policyd-spf/policyd-spf" \
         "$build/delivery-maildir/delivery-maildir"; do
  [[ -x $f ]] || { echo "missing $f: cmake --build $build" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; exit 2; }

. "$here/../lib.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"

echo "max_connections $max, $hold idle connections held from 127.0.0.1, $probes probes"
run_case() {
  local name=$1 protocol=$2 port; shift 2
  port=$(free_port)
  "$@" --listen "inet:127.0.0.1:$port" --config "$tmp/$name.json" 2>"$tmp/$name.log" &
  local pid=$!
  pids+=($pid)
  wait_port "$port"
  local before after
  before=$(rss_kb "$pid")
  echo "== $name"
  "$hold_tool" "inet:127.0.0.1:$port" --connections "$hold" --protocol "$protocol" \
    --probes "$probes" | sed 's/^/   /'
  after=$(rss_kb "$pid")
  echo "   rss kB: before $before, after $after"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

common="\"max_connections\": $max, \"log_decisions\": false"
echo "{$common}" > "$tmp/policyd-greylist.json"
echo "{$common}" > "$tmp/policyd-ratelimit.json"
echo "{$common, \"skip_addresses\": [\"192.0.2.0/24\"]}" > "$tmp/policyd-spf.json"
echo "u@example.org" > "$tmp/mailboxes"
cat > "$tmp/delivery-maildir.json" <<JSON
{$common, "mailbox_mode": "virtual", "virtual_base": "$tmp/vmail",
 "virtual_mailboxes": "$tmp/mailboxes"}
JSON
redis=redis://127.0.0.1:$redis_port
run_case policyd-greylist policy "$build/policyd-greylist/policyd-greylist" --redis "$redis"
run_case policyd-ratelimit policy "$build/policyd-ratelimit/policyd-ratelimit" --redis "$redis"
run_case policyd-spf policy "$build/policyd-spf/policyd-spf"
run_case delivery-maildir lmtp "$build/delivery-maildir/delivery-maildir"
