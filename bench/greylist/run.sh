#!/usr/bin/env bash
# bench/greylist/run.sh: policyd-greylist against Debian's postgrey, same run,
# same machine, same load generator (policy-load), same key mix.
#
#   bench/greylist/run.sh [BUILD_DIR]        (default: build)
#
# Needs the targets policyd-greylist and policy-load built in BUILD_DIR, and
# redis-server and postgrey installed (deploy/install-deps.sh with
# WITH_BENCH_PEERS=1). Run as root (postgrey's database directory is handed
# to the postgrey user). Starts a private redis-server, policyd-greylist and
# postgrey on free loopback ports in a temp dir and stops them by PID.
#
# Cases, each at CONNECTIONS (64) persistent connections for DURATION (10) s,
# RUNS (3) times, medians printed:
#   new       every request a new triplet (--unique)
#   repeated  1000 triplets (10 clients x 10 senders x 10 recipients) asked
#             over and over; delay 1 s in both daemons, so after the warmup
#             they pass as known triplets
# Each case also drives policy-reference-server (a do-nothing epoll server
# that answers DUNNO without parsing) the same way, so the p99 this machine
# gives with no work at all is printed beside ours; and then, open loop
# (policy-load --rate), offers 20 times postgrey's measured rate to
# policyd-greylist and to the reference server and prints both p99s.
# Then the Redis memory per stored triplet: FLUSHALL, TRIPLETS (1000000) new
# triplets through the daemon, (used_memory after - before) / keys.
#
# Environment: DURATION, RUNS, CONNECTIONS, TRIPLETS, WARMUP, REDIS_TRANSPORT
# (unix, the default: Redis on this host through its socket, as postgrey's
# database is a local file; tcp: through 127.0.0.1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
[[ $build = /* ]] || build=$root/$build
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
triplets=${TRIPLETS:-1000000}
warmup=${WARMUP:-1}
runs=${RUNS:-3}

daemon=$build/policyd-greylist/policyd-greylist
load=$build/bench/policy-load
reference=$build/bench/policy-reference-server
for f in "$daemon" "$load" "$reference"; do
  [[ -x $f ]] || { echo "missing $f: cmake --build $build --target policyd-greylist policy-load policy-reference-server" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "redis-server not installed" >&2; exit 2; }
[[ -x /usr/sbin/postgrey ]] || { echo "postgrey not installed (WITH_BENCH_PEERS=1 deploy/install-deps.sh)" >&2; exit 2; }
[[ $(id -u) = 0 ]] || { echo "run as root: postgrey's dbdir must belong to user postgrey" >&2; exit 2; }

tmp=$(mktemp -d /tmp/bench-greylist.XXXXXX)
chmod 755 "$tmp"  # postgrey runs as user postgrey and must reach its dbdir
pids=()
postgrey_pidfile=$tmp/postgrey/postgrey.pid
cleanup() {
  local p
  if [[ -s $postgrey_pidfile ]]; then kill "$(cat "$postgrey_pidfile")" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

. "$(dirname "$0")/../lib.sh"

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
  --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
wait_port "$redis_port"
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }

# Same rules as the postgrey below; no decision log (postgrey here has no
# syslog to write to either); an empty client whitelist, as no generated
# client is on postgrey's list.
if [[ ${REDIS_TRANSPORT:-unix} == unix ]]; then redis_url="unix:$tmp/redis.sock"
else redis_url="redis://127.0.0.1:$redis_port"; fi
gl_port=$(free_port)
cat >"$tmp/greylist.json" <<EOF
{"delay": 1, "log_decisions": false, "whitelist_clients": [], "x_greylist_header": true}
EOF
"$daemon" --config "$tmp/greylist.json" --listen "inet:127.0.0.1:$gl_port" \
  --redis "$redis_url" 2>"$tmp/greylist.log" &
pids+=($!)
wait_port "$gl_port"

ref_port=$(free_port)
"$reference" --listen "inet:127.0.0.1:$ref_port" >/dev/null 2>&1 &
pids+=($!)
wait_port "$ref_port"

pg_port=$(free_port)
mkdir -p "$tmp/postgrey"
chown postgrey: "$tmp/postgrey"
/usr/sbin/postgrey --inet="127.0.0.1:$pg_port" --dbdir="$tmp/postgrey" \
  --pidfile="$postgrey_pidfile" --delay=1 --daemonize
wait_port "$pg_port"

# run PORT ARGS... -> prints "rps p99_us errors"
run() {
  local port=$1
  shift
  "$load" --connect "inet:127.0.0.1:$port" --connections "$connections" \
    --duration "$duration" --warmup "$warmup" --json "$@" 2>/dev/null |
    jq -r '"\(.rps) \(.p99_us) \(.errors)"'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

printf '%s\n' "policyd-greylist vs postgrey $(dpkg-query -W -f='${Version}' postgrey 2>/dev/null), $connections connections, median of $runs runs of ${duration}s, $(nproc) cores, Redis via ${REDIS_TRANSPORT:-unix}"
printf '%-9s %-17s %12s %12s %8s\n' case daemon "req/s" "p99 ms" errors
declare -A rps
for case in new repeated; do
  if [[ $case = new ]]; then args=(--unique); else args=(--clients 10 --senders 10 --recipients 10 --seed 1); fi
  for who in policyd-greylist postgrey reference; do
    case $who in
      policyd-greylist) port=$gl_port ;;
      postgrey) port=$pg_port ;;
      reference) port=$ref_port ;;
    esac
    rs=() ps=() errors=0
    for ((i = 0; i < runs; i++)); do
      read -r r p e < <(run "$port" "${args[@]}")
      rs+=("$r") ps+=("$p") errors=$((errors + e))
    done
    rps[$case/$who]=$(median "${rs[@]}")
    printf '%-9s %-17s %12.0f %12.2f %8s   (req/s %s)\n' "$case" "$who" "${rps[$case/$who]}" \
      "$(echo "$(median "${ps[@]}") / 1000" | bc -l)" "$errors" "$(printf '%.0f ' "${rs[@]}")"
  done
  printf '%-9s %-17s %12.1fx\n' "$case" "ratio" "$(echo "${rps[$case/policyd-greylist]} / ${rps[$case/postgrey]}" | bc -l)"
  # Open loop at 20 times postgrey's rate: the latency at the target load.
  rate=$(echo "20 * ${rps[$case/postgrey]}" | bc -l)
  for who in policyd-greylist reference; do
    port=$gl_port
    [[ $who = reference ]] && port=$ref_port
    ps=() errors=0
    for ((i = 0; i < runs; i++)); do
      read -r r p e < <(run "$port" "${args[@]}" --rate "$rate")
      ps+=("$p") errors=$((errors + e))
    done
    printf '%-9s %-17s %12.0f %12.2f %8s   (open loop, 20x postgrey)\n' "$case" "$who" "$rate" \
      "$(echo "$(median "${ps[@]}") / 1000" | bc -l)" "$errors"
  done
done

# Memory per stored triplet: only triplet keys (no pass, so no client keys).
rcli FLUSHALL >/dev/null
before=$(rcli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
"$load" --connect "inet:127.0.0.1:$gl_port" --connections "$connections" --unique \
  --requests "$triplets" --warmup 0 --timeout 30 >/dev/null
keys=$(rcli DBSIZE)
after=$(rcli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
sample=$(rcli RANDOMKEY)
printf 'redis: %s keys after %s new triplets, used_memory %s -> %s bytes = %.0f bytes per triplet\n' \
  "$keys" "$triplets" "$before" "$after" "$(echo "($after - $before) / $keys" | bc -l)"
printf 'sample key: %s (TTL %ss)\n' "$sample" "$(rcli TTL "$sample")"
