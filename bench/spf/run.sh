#!/usr/bin/env bash
# policyd-spf against postfix-policyd-spf-python (the Debian peer, one
# process per connection behind socat, as spawn(8) runs it), in the same run,
# with the same load generator (policy-load) and the same DNS server.
#
# DNS: dnsmasq answers N_DOMAINS sender domains (d0.example ...) with a TXT
# SPF record from 127.0.0.1:53 inside a network namespace made for this run;
# every name under .example that is not listed is NXDOMAIN, nothing leaves
# the namespace. Both daemons and policy-load run inside it.
#
# Each load on a freshly started daemon; the peer gets 3 s of warm-up
# excluded, for forking its Python process per connection:
#   cold:    10,000 distinct sender domains and 10,000 clients (HELO names);
#            ours starts with an empty DNS cache and no warm-up excluded;
#   nocache: the same load, ours with its DNS cache off, so every check
#            resolves in full (the peer has no cache across requests);
#   warm:    100 sender domains and 100 clients, 3 s of warm-up for both.
#
# Usage (as root): bench/spf/run.sh [BUILD_DIR]   (default: build)
#   DURATION (s, default 10), CONNECTIONS (default 64)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
cold_domains=10000
warm_domains=100

ours="$build/policyd-spf/policyd-spf"
load="$build/bench/policy-load"
peer=/usr/bin/policyd-spf
for f in "$ours" "$load" "$peer" /usr/sbin/dnsmasq /usr/bin/socat; do
    [[ -x $f ]] || { echo "missing $f (build policyd-spf and policy-load; install the peers)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "needs root (ip netns, port 53)" >&2; exit 1; }

ns="spfbench$$"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns" "$work"
    rmdir /etc/netns 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
mkdir -p "/etc/netns/$ns"
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' > "/etc/netns/$ns/resolv.conf"
# Foreground only: a background job must be `ip netns exec` itself (which
# execs), so that $! is the server's own PID.
inns() { ip netns exec "$ns" "$@"; }

# The zone: even domains permit the load's clients (10.0.0.0/9), odd ones do
# not (a Fail, rejected by both daemons' Mail_From_reject = Fail).
{
    echo "no-resolv"; echo "no-hosts"; echo "local=/example/"
    echo "listen-address=127.0.0.1"; echo "bind-interfaces"; echo "port=53"
    echo "local-ttl=3600"; echo "neg-ttl=3600"; echo "cache-size=0"
    for ((i = 0; i < cold_domains; i++)); do
        if ((i % 2)); then net=192.0.2.0/24; else net=10.0.0.0/9; fi
        echo "txt-record=d$i.example,\"v=spf1 ip4:$net -all\""
    done
} > "$work/dnsmasq.conf"
ip netns exec "$ns" /usr/sbin/dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" \
    --pid-file="$work/dnsmasq.pid" 2> "$work/dnsmasq.log" &
pids+=($!)

# Both with their defaults, except: no per-decision logging (the peer's
# syslog goes nowhere here either) and HELO_reject Fail for both.
cat > "$work/ours.json" <<'EOF'
{ "helo_reject": "Fail", "mail_from_reject": "Fail", "log_decisions": false }
EOF
cat > "$work/ours-nocache.json" <<'EOF'
{ "helo_reject": "Fail", "mail_from_reject": "Fail", "log_decisions": false,
  "dns_cache_entries": 0 }
EOF
cat > "$work/peer.conf" <<'EOF'
debugLevel = 0
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 127.0.0.0/8,::ffff:127.0.0.0/104,::1
EOF

wait_port() {  # bounded: 10 s
    for ((i = 0; i < 200; i++)); do
        inns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2; return 1
}
wait_port 53

# run_load NAME PORT DOMAINS WARMUP -> prints "rps p99_ms errors"
run_load() {
    local port=$2 domains=$3 warmup=$4
    inns "$load" --connect "inet:127.0.0.1:$port" --connections "$connections" \
        --duration "$duration" --warmup "$warmup" --timeout 30 --seed 7 \
        --senders $((domains * 10)) --sender-domains "$domains" --clients "$domains" \
        --json 2> "$work/$1.human" > "$work/$1.json"
    /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("%.0f %.1f %d %s" % (r["rps"], r["p99_us"] / 1000.0, r["errors"],
      " ".join("%s=%d" % kv for kv in sorted(r["actions"].items()))))' "$work/$1.json"
}

start_ours() {  # [CONFIG]
    ip netns exec "$ns" "$ours" --config "${1:-$work/ours.json}" --listen inet:127.0.0.1:10034 \
        2> "$work/ours.log" &
    daemon=$!; pids+=("$daemon"); wait_port 10034
}
start_peer() {
    ip netns exec "$ns" /usr/bin/socat TCP-LISTEN:10035,bind=127.0.0.1,reuseaddr,fork,backlog=128 \
        EXEC:"$peer $work/peer.conf" 2> "$work/peer.log" &
    daemon=$!; pids+=("$daemon"); wait_port 10035
}
stop_daemon() { kill "$daemon"; wait "$daemon" 2>/dev/null || true; }

declare -A result
start_ours; result[ours.cold]=$(run_load ours.cold 10034 "$cold_domains" 0); stop_daemon
start_ours "$work/ours-nocache.json"
result[ours.nocache]=$(run_load ours.nocache 10034 "$cold_domains" 0); stop_daemon
start_peer; result[peer.cold]=$(run_load peer.cold 10035 "$cold_domains" 3); stop_daemon
start_ours; result[ours.warm]=$(run_load ours.warm 10034 "$warm_domains" 3); stop_daemon
start_peer; result[peer.warm]=$(run_load peer.warm 10035 "$warm_domains" 3); stop_daemon

echo
echo "policyd-spf vs postfix-policyd-spf-python, $connections connections, ${duration}s per load, DNS from dnsmasq"
printf '%-28s %12s %10s %8s  %s\n' load requests/s p99_ms errors actions
for k in ours.cold ours.nocache peer.cold ours.warm peer.warm; do
    read -r rps p99 err actions <<< "${result[$k]}"
    printf '%-28s %12s %10s %8s  %s\n' "$k ($([[ $k == *warm ]] && echo $warm_domains || echo $cold_domains) domains)" \
        "$rps" "$p99" "$err" "$actions"
done
rps() { cut -d' ' -f1 <<< "${result[$1]}"; }
/usr/bin/python3 -c '
import sys
oc, on, pc, ow, pw = (float(x) for x in sys.argv[1:])
r = lambda a, b: a / b if b else float("inf")
print("ratio ours/peer: cold %.1fx (cache off %.1fx), warm %.1fx" % (r(oc, pc), r(on, pc), r(ow, pw)))
' "$(rps ours.cold)" "$(rps ours.nocache)" "$(rps peer.cold)" "$(rps ours.warm)" "$(rps peer.warm)"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
