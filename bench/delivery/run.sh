#!/usr/bin/env bash
# bench/delivery/run.sh: Maildir delivery rate of delivery-maildir over LMTP
# against Dovecot's LDA (dovecot-lda) and Postfix's local(8), same run, same
# file system, same 10 KB message, each with its own fsyncs.
#
#   bench/delivery/run.sh [BUILD_DIR]        (default: build)
#
# Needs delivery-maildir built in BUILD_DIR, g++ (the load generator,
# delivery_load.cpp, is compiled into the temp dir: it uses no project code),
# postfix and dovecot-core installed, and root (Postfix, and dovecot-lda
# switching to the mailbox owner). Everything runs on free loopback ports in
# a temp dir below BENCH_DIR (default /var/tmp: a real disk, not tmpfs, so
# fsync costs what it costs) and is stopped by PID.
#
# Cases, each into 1 mailbox and into 1000 mailboxes (recipient i % N), RUNS
# (3) times from empty mailboxes, medians printed in messages/s:
#   delivery-maildir  LMTP, CONNS (8) connections pipelining MAIL/RCPT/DATA,
#                     MESSAGES (4000) messages; delivery_workers 8
#   dovecot-lda       one process per message as Postfix's mailbox_command or
#                     pipe(8) runs it, CONNS at a time, PEER_MESSAGES (1000);
#                     a Dovecot master runs for its userdb lookups
#   postfix local(8)  PEER_MESSAGES messages put on hold through smtpd first
#                     (not timed), then released (postsuper -H, postqueue -f);
#                     timed until the last "status=sent" in the log. Mailboxes
#                     are alias Maildir destinations ("mbN /path/mbN/"), local(8) runs
#                     with local_destination_concurrency_limit = CONNS.
#
# Environment: RUNS, CONNS, MESSAGES, PEER_MESSAGES, SIZE (10240), BENCH_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
[[ $build = /* ]] || build=$root/$build
runs=${RUNS:-3}
conns=${CONNS:-8}
messages=${MESSAGES:-4000}
peer_messages=${PEER_MESSAGES:-1000}
size=${SIZE:-10240}

daemon=$build/delivery-maildir/delivery-maildir
[[ -x $daemon ]] || { echo "missing $daemon: cmake --build $build --target delivery-maildir" >&2; exit 2; }
[[ -x /usr/lib/dovecot/dovecot-lda ]] || { echo "dovecot-core not installed" >&2; exit 2; }
command -v postfix >/dev/null || { echo "postfix not installed" >&2; exit 2; }
[[ $(id -u) = 0 ]] || { echo "run as root" >&2; exit 2; }

tmp=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bench-delivery.XXXXXX")
chmod 755 "$tmp"
pids=()
postfix_running=0
cleanup() {
  local p
  if [[ $postfix_running = 1 ]]; then postfix -c "$tmp/postfix" stop >/dev/null 2>&1 || true; fi
  if [[ -s $tmp/dovecot-run/master.pid ]]; then kill "$(cat "$tmp/dovecot-run/master.pid")" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # Postfix's master exits asynchronously: give it a bounded while.
  for _ in $(seq 50); do [[ -e $tmp/queue/pid/master.pid ]] && kill -0 "$(cat "$tmp/queue/pid/master.pid" 2>/dev/null)" 2>/dev/null || break; sleep 0.1; done
  if [[ ${KEEP:-0} = 1 ]]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM

. "$(dirname "$0")/../lib.sh"
rate_of() { sed -n 's/.*rate=\([0-9.]*\).*/\1/p'; }

load=$tmp/delivery-load
g++ -std=c++20 -O2 -pthread -o "$load" "$here/delivery_load.cpp"

# --- delivery-maildir -------------------------------------------------------
for m in 1 1000; do
  for r in $(seq "$runs"); do
    for i in $(seq 0 $((m - 1))); do echo "mb$i@r$m-$r.example"; done
  done
done > "$tmp/mailboxes"
cat > "$tmp/delivery.json" <<JSON
{"mailbox_mode": "virtual", "virtual_base": "$tmp/vmail",
 "virtual_mailboxes": "$tmp/mailboxes", "log_decisions": false, "delivery_workers": 8}
JSON
lmtp_port=$(free_port)
mkdir -p "$tmp/vmail"
"$daemon" --config "$tmp/delivery.json" --listen "inet:127.0.0.1:$lmtp_port" 2>"$tmp/delivery.log" &
pids+=($!)
wait_port "$lmtp_port"

# --- dovecot-lda ------------------------------------------------------------
mkdir -p "$tmp/dovecot-home"
chown nobody:nogroup "$tmp/dovecot-home"
cat > "$tmp/dovecot.conf" <<CONF
base_dir = $tmp/dovecot-run
state_dir = $tmp/dovecot-state
log_path = $tmp/dovecot.log
protocols =
ssl = no
mail_location = maildir:~/Maildir
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$tmp/dovecot-home/%u
}
passdb {
  driver = static
  args = nopassword=y
}
CONF
dovecot -c "$tmp/dovecot.conf"
for _ in $(seq 100); do [[ -S $tmp/dovecot-run/auth-userdb ]] && break; sleep 0.1; done

# --- Postfix local(8) -------------------------------------------------------
smtp_port=$(free_port)
mkdir -p "$tmp/postfix" "$tmp/queue" "$tmp/data" "$tmp/pf-maildirs"
chown postfix: "$tmp/data"
chown nobody:nogroup "$tmp/pf-maildirs"
# texthash: "key value"; one alias set per run directory (see below).
for m in 1 1000; do
  for r in $(seq "$runs"); do
    for i in $(seq 0 $((m - 1))); do echo "r$m-$r-mb$i $tmp/pf-maildirs/$m-$r/mb$i/"; done
  done
done > "$tmp/aliases"
cat > "$tmp/postfix/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $tmp/queue
data_directory = $tmp/data
maillog_file = $tmp/maillog
maillog_file_prefixes = $tmp
myhostname = mx.bench.example
mydomain = bench.example
mydestination = bench.local
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps = texthash:$tmp/aliases
alias_database =
default_privs = nobody
smtp_dns_support_level = disabled
smtpd_recipient_restrictions = check_recipient_access static:HOLD, permit_mynetworks, reject
local_destination_concurrency_limit = $conns
CONF
postfix_master_cf "$smtp_port" local > "$tmp/postfix/master.cf"
postfix -c "$tmp/postfix" start >"$tmp/postfix.out" 2>&1 || { cat "$tmp/postfix.out" >&2; exit 1; }
postfix_running=1
wait_port "$smtp_port"

sent_count() { grep -c 'status=sent' "$tmp/maillog" 2>/dev/null || true; }
postfix_run() {  # $1 mailboxes, $2 run directory; prints "rate=R"
  local before target start end n
  before=$(sent_count)
  "$load" smtp "127.0.0.1:$smtp_port" "$conns" "$peer_messages" "$size" "$1" bench.local "r$2-" >&2
  # Bounded: wait for all messages to reach the hold queue (100 x 0.1 s).
  for _ in $(seq 100); do
    n=$(find "$tmp/queue/hold" -type f | wc -l)
    [[ $n -ge $peer_messages ]] && break
    sleep 0.1
  done
  target=$((before + peer_messages))
  start=$(date +%s.%N)
  # -H moves held mail to the deferred queue; -f makes qmgr scan it now.
  postsuper -c "$tmp/postfix" -H ALL 2>/dev/null
  postqueue -c "$tmp/postfix" -f
  # Bounded: at most 300 s.
  end=$(( $(date +%s) + 300 ))
  while [[ $(sent_count) -lt $target && $(date +%s) -lt $end ]]; do sleep 0.02; done
  n=$(( $(sent_count) - before ))
  /usr/bin/python3 -c "import time; s=$start; print('rate=%.1f delivered=%d' % ($n/(time.time()-s), $n))"
}

echo "delivery benchmark: ${size}-byte messages, $conns-way concurrency, medians of $runs runs, file system: $(df --output=source,fstype "$tmp" | tail -1)"
printf '%-10s %-26s %10s\n' mailboxes program "msgs/s"
for mailboxes in 1 1000; do
  ours=() lda=() pf=()
  for r in $(seq "$runs"); do
    # Fresh, empty mailboxes: new directories for every run instead of
    # deleting the last run's files, because ext4 then spends its time
    # skipping recently freed inodes, which would penalise whoever runs next.
    run_id=$mailboxes-$r
    mkdir -p "$tmp/pf-maildirs/$run_id"
    chown nobody:nogroup "$tmp/pf-maildirs/$run_id"
    sync
    ours+=("$("$load" lmtp "127.0.0.1:$lmtp_port" "$conns" "$messages" "$size" "$mailboxes" "r$run_id.example" | rate_of)")
    sync
    lda+=("$("$load" exec "$conns" "$peer_messages" "$size" "$mailboxes" -- /usr/lib/dovecot/dovecot-lda -c "$tmp/dovecot.conf" -d "r$run_id-%m" -f bench@bench.example | rate_of)")
    sync
    pf+=("$(postfix_run "$mailboxes" "$run_id" | rate_of)")
  done
  o=$(printf '%s\n' "${ours[@]}" | median)
  d=$(printf '%s\n' "${lda[@]}" | median)
  p=$(printf '%s\n' "${pf[@]}" | median)
  printf '%-10s %-26s %10s   (runs: %s)\n' "$mailboxes" "delivery-maildir LMTP" "$o" "${ours[*]}"
  printf '%-10s %-26s %10s   (runs: %s)\n' "$mailboxes" "dovecot-lda" "$d" "${lda[*]}"
  printf '%-10s %-26s %10s   (runs: %s)\n' "$mailboxes" "postfix local(8)" "$p" "${pf[*]}"
  /usr/bin/python3 -c "o,d,p=$o,$d,$p; f=max(d,p); print('%-10s ratio to the faster peer: %.1fx' % ('$mailboxes', o/f))"
done
