#!/usr/bin/env bash
# bench/mta-core/run.sh: mta-core against Debian's Postfix 3.7, same run,
# same machine, same load and the same neighbours:
#
#   smtp-source -s 20 (sessions) -m MESSAGES -l 5120 (5 KB)
#     -> the MTA (queue fsynced: Postfix's own, mta-core's grouped fsync)
#        asking one policyd-greylist (clients whitelisted) with
#        check_policy_service at RCPT, backed by one redis-server
#     -> relayhost: one smtp-sink
#
#   bench/mta-core/run.sh [BUILD_DIR]        (default: build)
#
# Prints, per MTA and round, messages per second accepted (smtp-source's
# wall time) and delivered (until the last status=sent line), then the
# medians of RUNS rounds, alternating MTAs. Needs root, the targets
# mta-core and policyd-greylist built, and postfix and redis-server
# installed (deploy/install-deps.sh). Everything runs on free loopback
# ports in a temp dir and is stopped by PID (Postfix by postfix stop).
#
# Environment: MESSAGES (5000), SESSIONS (20), SIZE (5120), RUNS (3).
# Then: 10,000 idle sessions after EHLO (IDLE), plain, then past STARTTLS on
# a freshly started mta-core: its resident memory, and how long a new client
# waits for its banner.
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
idle=${IDLE:-10000}

[[ $(id -u) = 0 ]] || { echo "run as root" >&2; exit 2; }
for p in "$build/mta-core/mta-core" "$build/policyd-greylist/policyd-greylist"; do
  [[ -x $p ]] || { echo "missing $p: build first" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/bench-mta.XXXXXX)
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

# --- the neighbours ------------------------------------------------------
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >/dev/null &
pids+=($!)
wait_port "$redis_port"

echo "127.0.0.1" > "$tmp/whitelist_clients"
grey_port=$(free_port)
cat > "$tmp/greylist.json" <<JSON
{"listen": "inet:127.0.0.1:$grey_port", "whitelist_clients": ["$tmp/whitelist_clients"], "log_decisions": false}
JSON
"$build/policyd-greylist/policyd-greylist" --config "$tmp/greylist.json" \
  --redis "redis://127.0.0.1:$redis_port" 2>"$tmp/greylist.log" &
pids+=($!)
wait_port "$grey_port"

sink_port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$sink_port" 1024 &
pids+=($!)
wait_port "$sink_port"

# --- the two MTAs, one configuration ---------------------------------------
common="myhostname = mx.bench.example
mydomain = bench.example
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
relayhost = [127.0.0.1]:$sink_port
smtp_dns_support_level = disabled
smtpd_client_event_limit_exceptions = \$mynetworks
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$grey_port, permit_mynetworks, reject
default_destination_concurrency_limit = 20"

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
postfix -c "$tmp/postfix" start >"$tmp/postfix.out" 2>&1 || { cat "$tmp/postfix.out" >&2; exit 1; }
postfix_running=1
wait_port "$pf_port"

mc_port=$(free_port)
mkdir -p "$tmp/mta-core"
# A certificate for the TLS idle sessions (STARTTLS offered, not used by the load).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" \
  -out "$tmp/cert.pem" -days 2 -subj /CN=mx.bench.example >/dev/null 2>&1
chmod 644 "$tmp/key.pem"
cat > "$tmp/mta-core/main.cf" <<CONF
queue_directory = $tmp/mc-queue
maillog_file = $tmp/mc-maillog
smtpd_tls_security_level = may
smtpd_tls_cert_file = $tmp/cert.pem
smtpd_tls_key_file = $tmp/key.pem
$common
CONF
echo "127.0.0.1:$mc_port inet n - n - - smtpd" > "$tmp/mta-core/master.cf"
"$build/mta-core/mta-core" --config "$tmp/mta-core/main.cf" 2>"$tmp/mta-core.log" &
mc_pid=$!
pids+=($mc_pid)
wait_port "$mc_port"

# One round: prints "accepted delivered" in messages per second.
round() {  # $1 port, $2 maillog
  local before start end_accept
  before=$(sent "$2")
  start=$(date +%s.%N)
  smtp-source -s "$sessions" -m "$messages" -l "$size" -f sender@bench.example \
    -t rcpt@remote.example "127.0.0.1:$1"
  end_accept=$(date +%s.%N)
  delivery_rates "$messages" "$start" "$end_accept" "$2" $((before + messages))
}

compare_mtas "$runs" "$pf_port" "$tmp/pf-maillog" "$mc_port" "$tmp/mc-maillog"

# --- idle sessions ----------------------------------------------------------
if [[ $idle -gt 0 ]]; then
  echo
  /usr/bin/python3 "$here/idle_sessions.py" "$mc_port" "$idle" "$mc_pid"
  # TLS sessions on a freshly started mta-core, so the plain run's memory is not counted.
  kill "$mc_pid"; wait "$mc_pid" 2>/dev/null || true
  "$build/mta-core/mta-core" --config "$tmp/mta-core/main.cf" 2>>"$tmp/mta-core.log" &
  mc_pid=$!
  pids+=($mc_pid)
  wait_port "$mc_port"
  /usr/bin/python3 "$here/idle_sessions.py" "$mc_port" "$idle" "$mc_pid" tls
fi
