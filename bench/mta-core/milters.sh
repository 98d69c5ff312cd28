#!/usr/bin/env bash
# bench/mta-core/milters.sh: the milter client's cost, mta-core against
# Debian's Postfix 3.7 with the same milter, same load, same machine:
#
#   smtp-source -s 20 (sessions) -m MESSAGES -l 5120 (5 KB)
#     -> the MTA (queue fsynced), smtpd_milters = one clamav-milter with
#        clamd scanning every message (MILTER=clamav, the default; its
#        signature database is made here with sigtool, nothing is
#        downloaded), or one OpenDKIM signing every message
#        (MILTER=opendkim); or no milter
#     -> relayhost: one smtp-sink
#
#   bench/mta-core/milters.sh [BUILD_DIR]        (default: build)
#
# Prints messages per second accepted (smtp-source's wall time) per MTA,
# with and without the milter, medians of RUNS rounds. Needs root, the
# target mta-core built, and postfix, clamav-milter, clamav-daemon and
# opendkim installed (deploy/install-deps.sh). Everything runs on free loopback ports in a
# temp dir and is stopped by PID (Postfix by postfix stop).
#
# Environment: MESSAGES (2000), SESSIONS (20), SIZE (5120), RUNS (3),
# MILTER (clamav or opendkim).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/bench/lib.sh"
build=${1:-$root/build}
[[ $build = /* ]] || build=$root/$build
messages=${MESSAGES:-2000}
sessions=${SESSIONS:-20}
size=${SIZE:-5120}
runs=${RUNS:-3}
which_milter=${MILTER:-clamav}

[[ $(id -u) = 0 ]] || { echo "run as root" >&2; exit 2; }
[[ -x $build/mta-core/mta-core ]] || { echo "missing $build/mta-core/mta-core: build first" >&2; exit 2; }

tmp=$(mktemp -d /tmp/bench-milter.XXXXXX)
chmod 755 "$tmp"
pids=()
postfix_running=()
cleanup() {
  for d in "${postfix_running[@]}"; do postfix -c "$d" stop >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- the neighbours ------------------------------------------------------
milter_port=$(free_port)
if [[ $which_milter = opendkim ]]; then
  opendkim-genkey -D "$tmp" -d bench.example -s bench
  printf 'Syslog no\nDomain bench.example\nSelector bench\nKeyFile %s\nRequireSafeKeys false\nMode s\nSocket inet:%s@127.0.0.1\n' \
    "$tmp/bench.private" "$milter_port" > "$tmp/opendkim.conf"
  opendkim -f -x "$tmp/opendkim.conf" 2>"$tmp/opendkim.log" &
  pids+=($!)
  wait_port "$milter_port"
else
  # clamd with one signature (EICAR's, from sigtool) and clamav-milter.
  mkdir -p "$tmp/clamdb"
  eicar='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
  echo "Eicar-Test-Local:0:*:$(printf '%s' "$eicar" | sigtool --hex-dump | tr -d '\n')" > "$tmp/clamdb/local.ndb"
  printf 'LocalSocket %s\nDatabaseDirectory %s\nForeground yes\nLogFile %s\n' \
    "$tmp/clamd.sock" "$tmp/clamdb" "$tmp/clamd.log" > "$tmp/clamd.conf"
  clamd -c "$tmp/clamd.conf" >"$tmp/clamd.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do [[ -S $tmp/clamd.sock ]] && break; sleep 0.1; done
  printf 'MilterSocket inet:%s@127.0.0.1\nClamdSocket unix:%s\nForeground yes\nOnInfected Reject\nOnFail Defer\nAddHeader Replace\nLogFile %s\n' \
    "$milter_port" "$tmp/clamd.sock" "$tmp/clamav-milter.log" > "$tmp/clamav-milter.conf"
  clamav-milter -c "$tmp/clamav-milter.conf" >"$tmp/clamav-milter.out" 2>&1 &
  pids+=($!)
  wait_port "$milter_port"
fi

sink_port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$sink_port" 1024 &
pids+=($!)
wait_port "$sink_port"

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
default_destination_concurrency_limit = 20"

start_postfix() {  # $1 name, $2 extra main.cf line; sets ports[$1]
  local dir=$tmp/$1 port
  port=$(free_port)
  mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
  chown postfix: "$dir/data"
  printf 'compatibility_level = 3.6\nqueue_directory = %s\ndata_directory = %s\nmaillog_file = %s\nmaillog_file_prefixes = %s\n%s\n%s\n' \
    "$dir/queue" "$dir/data" "$dir/maillog" "$tmp" "$common" "$2" > "$dir/etc/main.cf"
  postfix_master_cf "$port" smtp relay > "$dir/etc/master.cf"
  postfix -c "$dir/etc" start >"$dir/postfix.out" 2>&1 || { cat "$dir/postfix.out" >&2; exit 1; }
  postfix_running+=("$dir/etc")
  wait_port "$port"
  ports[$1]=$port
}

start_mta_core() {  # $1 name, $2 extra main.cf line; sets ports[$1]
  local dir=$tmp/$1 port
  port=$(free_port)
  mkdir -p "$dir"
  printf 'queue_directory = %s\nmaillog_file = %s\n%s\n%s\n' "$dir/queue" "$dir/maillog" "$common" "$2" \
    > "$dir/main.cf"
  echo "127.0.0.1:$port inet n - n - - smtpd" > "$dir/master.cf"
  "$build/mta-core/mta-core" --config "$dir/main.cf" >"$dir/mta-core.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
  ports[$1]=$port
}

milter="smtpd_milters = inet:127.0.0.1:$milter_port"
declare -A ports
start_postfix postfix ""
start_postfix postfix+milter "$milter"
start_mta_core mta-core ""
start_mta_core mta-core+milter "$milter"

round() {  # $1 port: messages per second accepted
  local start end
  start=$(date +%s.%N)
  smtp-source -s "$sessions" -m "$messages" -l "$size" -f sender@bench.example -t rcpt@remote.example \
    "127.0.0.1:$1"
  end=$(date +%s.%N)
  /usr/bin/python3 -c "import sys; m,s,e=map(float,sys.argv[1:]); print('%.0f' % (m/(e-s)))" "$messages" "$start" "$end"
}

declare -A results
for r in $(seq "$runs"); do
  for name in postfix postfix+milter mta-core mta-core+milter; do
    rate=$(round "${ports[$name]}")
    results[$name]+="$rate "
    echo "round $r $name accepted $rate/s"
  done
done
echo "milter: $which_milter"
for name in postfix postfix+milter mta-core mta-core+milter; do
  echo "median $name: $(printf '%s\n' ${results[$name]} | median) messages/s accepted"
done
