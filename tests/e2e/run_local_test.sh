#!/usr/bin/env bash
# deploy/run-local.sh as an operator runs it, with SIGHUP: every daemon
# reloads and the script, Redis and the daemons keep running; SIGTERM then
# stops everything and exits 0.
#
#   run_local_test.sh SOURCE_DIR BUILD_DIR
#
# The script runs as written, from a copy of deploy/ whose install-deps.sh
# does nothing and with a cmake that does nothing on PATH (the build is
# BUILD_DIR's), in a private network namespace (its ports are fixed: Redis
# 6379, the daemons' defaults, LMTP 24), with STATE_DIR in a temp dir. Root
# only (network namespace, port 24, the run user).
set -euo pipefail
src=$1
build=$2
tmp=$(mktemp -d)
chmod 755 "$tmp"  # the run user reaches STATE_DIR below it
pid=
had_user=0
id mailpolicy >/dev/null 2>&1 && had_user=1
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  # run-local.sh creates its run user; leave the host as it was.
  [[ $had_user = 1 ]] || userdel mailpolicy 2>/dev/null || true
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$tmp"/run-local.log "$tmp"/state/log/*.log; do
    [[ -f $f ]] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
  done
  exit 1
}
# Poll (bounded) until a command succeeds.
until_true() {
  local i
  for ((i = 0; i < 300; i++)); do "$@" && return 0; sleep 0.05; done
  return 1
}

mkdir -p "$tmp/root/deploy" "$tmp/bin"
cp -r "$src/deploy/config" "$src/deploy/postfix" "$tmp/root/deploy/"
cp "$src/deploy/run-local.sh" "$tmp/root/deploy/"
printf '#!/bin/sh\nexit 0\n' > "$tmp/root/deploy/install-deps.sh"
printf '#!/bin/sh\nexit 0\n' > "$tmp/bin/cmake"
chmod +x "$tmp/root/deploy/install-deps.sh" "$tmp/bin/cmake"

# unshare execs bash, which execs the script: $! is run-local.sh itself.
PATH="$tmp/bin:$PATH" BUILD_DIR="$build" STATE_DIR="$tmp/state" \
  unshare --net bash -c 'ip link set lo up && exec "$0"' "$tmp/root/deploy/run-local.sh" \
  >"$tmp/run-local.log" 2>&1 &
pid=$!
until_true grep -q "run-local: ready" "$tmp/run-local.log" || fail "run-local.sh did not get ready"

in_ns() { nsenter -t "$pid" -n "$@"; }
answers() {  # a policy request to 127.0.0.1:PORT in the namespace gets an action
  in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 && printf "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\nsender=a@example.org\nrecipient=b@example.org\n\n" >&3 && head -c 7 <&3 | grep -q "action="' "$1"
}
lmtp_greets() { in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/24 && head -c 3 <&3 | grep -q 220'; }
smtp_greets() { in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/2525 && head -c 3 <&3 | grep -q 220'; }
reloaded() {  # DAEMON has logged at least N reloads
  local n
  n=$(grep -c "configuration reloaded" "$tmp/state/log/$1.log" 2>/dev/null || true)
  [[ ${n:-0} -ge $2 ]]
}

daemons=(policyd-spf policyd-ratelimit policyd-greylist delivery-maildir mta-core)
for round in 1 2; do
  kill -HUP "$pid"
  for d in "${daemons[@]}"; do
    until_true reloaded "$d" "$round" || fail "$d did not reload (SIGHUP $round)"
  done
  kill -0 "$pid" 2>/dev/null || fail "run-local.sh exited after SIGHUP $round"
  for port in 10034 10032 10023; do answers "$port" || fail "nothing answers on $port after SIGHUP $round"; done
  lmtp_greets || fail "no LMTP greeting after SIGHUP $round"
  smtp_greets || fail "no SMTP greeting from mta-core after SIGHUP $round"
  in_ns redis-cli -p 6379 ping | grep -q PONG || fail "Redis stopped after SIGHUP $round"
done
grep -q "a service exited\|stopping" "$tmp/run-local.log" && fail "run-local.sh stopped something"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[[ $status = 0 ]] || fail "run-local.sh exited $status on SIGTERM"
for d in "${daemons[@]}"; do grep -q "stopped" "$tmp/state/log/$d.log" || fail "$d did not stop cleanly"; done
echo "run-local.sh: reloaded twice on SIGHUP and kept running; stopped on SIGTERM"
