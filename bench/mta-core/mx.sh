#!/usr/bin/env bash
# bench/mta-core/mx.sh: mta-core against Debian's Postfix 3.7 delivering to
# the Internet, same run, same machine, same load:
#
#   5 x smtp-source -s SESSIONS/5 -m MESSAGES/5 -l 5120, one per domain
#     -> the MTA (mynetworks relay, queue fsynced)
#     -> MX lookup of d1..d5.bench.test (dnsmasq on 127.0.0.81:53, which
#        both MTAs reach through their own resolv.conf: a private mount
#        namespace) -> five smtp-sink on 127.0.0.71..75, port 25
#
#   bench/mta-core/mx.sh [BUILD_DIR]        (default: build)
#
# Prints, per MTA and round, messages per second accepted and delivered
# (until the last status=sent line), then the medians of RUNS rounds,
# alternating MTAs. Needs root and the target mta-core built; postfix,
# dnsmasq and smtp-source/smtp-sink installed (deploy/install-deps.sh).
#
# Environment: MESSAGES (5000), SESSIONS (20), SIZE (5120), RUNS (3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/bench/lib.sh"
build=${1:-$root/build}
[[ $build = /* ]] || build=$root/$build
messages=${MESSAGES:-5000}
sessions=${SESSIONS:-20}
size=${SIZE:-5120}
runs=${RUNS:-3}
domains=5
dns=127.0.0.81

[[ $(id -u) = 0 ]] || { echo "run as root" >&2; exit 2; }
[[ -x $build/mta-core/mta-core ]] || { echo "missing $build/mta-core/mta-core: build first" >&2; exit 2; }

tmp=$(mktemp -d /tmp/bench-mx.XXXXXX)
chmod 755 "$tmp"
pids=()
postfix_running=0
cleanup() {
  if [[ $postfix_running = 1 ]]; then postfix -c "$tmp/postfix" stop >/dev/null 2>&1 || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Run a command with $tmp/resolv.conf as /etc/resolv.conf.
with_test_dns() {  # exec: in the background, $! is the program itself
  exec unshare -m /bin/sh -c "mount --bind $tmp/resolv.conf /etc/resolv.conf && exec \"\$@\"" sh "$@"
}

# --- DNS and the receiving servers ------------------------------------------
records=()
for i in $(seq $domains); do
  records+=("--mx-host=d$i.bench.test,mx$i.bench.test,10" "--host-record=mx$i.bench.test,127.0.0.7$i")
done
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --listen-address=$dns \
  --bind-interfaces --port=53 --user=root --pid-file= --local=/test/ --local-ttl=300 --neg-ttl=300 \
  "${records[@]}" 2>"$tmp/dnsmasq.log" &
pids+=($!)
echo "nameserver $dns" > "$tmp/resolv.conf"
for i in $(seq $domains); do
  smtp-sink -u nobody "127.0.0.7$i:25" 1024 &
  pids+=($!)
done
for _ in $(seq 100); do
  /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.75', 25), 1)" 2>/dev/null && break
  sleep 0.05
done

# --- the two MTAs, one configuration ---------------------------------------
common="myhostname = mx.bench.example
mydomain = bench.example
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
smtpd_client_event_limit_exceptions = \$mynetworks
smtpd_relay_restrictions = permit_mynetworks, reject
default_destination_concurrency_limit = 20
smtp_tls_security_level = none"

pf_port=$(free_port)
mkdir -p "$tmp/postfix" "$tmp/pf-queue" "$tmp/pf-data"
chown postfix: "$tmp/pf-data"
cat > "$tmp/postfix/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $tmp/pf-queue
data_directory = $tmp/pf-data
maillog_file = $tmp/pf-maillog
maillog_file_prefixes = $tmp
$common
CONF
postfix_master_cf "$pf_port" smtp relay > "$tmp/postfix/master.cf"
(with_test_dns postfix -c "$tmp/postfix" start) >"$tmp/postfix.out" 2>&1 || { cat "$tmp/postfix.out" >&2; exit 1; }
postfix_running=1
wait_port "$pf_port"

mc_port=$(free_port)
mkdir -p "$tmp/mta-core"
cat > "$tmp/mta-core/main.cf" <<CONF
queue_directory = $tmp/mc-queue
maillog_file = $tmp/mc-maillog
$common
CONF
echo "127.0.0.1:$mc_port inet n - n - - smtpd" > "$tmp/mta-core/master.cf"
(with_test_dns "$build/mta-core/mta-core" --config "$tmp/mta-core/main.cf") 2>"$tmp/mta-core.log" &
mc_pid=$!
pids+=($mc_pid)
wait_port "$mc_port"

# One round: prints "accepted delivered" in messages per second.
round() {  # $1 port, $2 maillog
  local before start end_accept i per_domain per_sessions
  per_domain=$((messages / domains))
  per_sessions=$((sessions / domains))
  before=$(sent "$2")
  start=$(date +%s.%N)
  local sources=()
  for i in $(seq $domains); do
    smtp-source -s "$per_sessions" -m "$per_domain" -l "$size" -f sender@bench.example \
      -t "rcpt@d$i.bench.test" "127.0.0.1:$1" &
    sources+=($!)
  done
  wait "${sources[@]}"
  end_accept=$(date +%s.%N)
  delivery_rates "$((per_domain * domains))" "$start" "$end_accept" "$2" $((before + per_domain * domains))
}

compare_mtas "$runs" "$pf_port" "$tmp/pf-maillog" "$mc_port" "$tmp/mc-maillog"
grep -q 'relay=mx[1-5].bench.test\[127.0.0.7[1-5]\]:25' "$tmp/mc-maillog" || echo "warning: mta-core did not deliver by MX" >&2
grep -q 'relay=mx[1-5].bench.test\[127.0.0.7[1-5]\]:25' "$tmp/pf-maillog" || echo "warning: Postfix did not deliver by MX" >&2
