#!/usr/bin/env bash
# Install, build and run the whole service on this host, in the foreground:
# a private Redis on 127.0.0.1:6379 (or the one already answering there), the
# three policy daemons on their default loopback ports, and delivery-maildir
# serving LMTP on 127.0.0.1:24 into STATE_DIR/mail. Ready for Postfix's check_policy_service:
# STATE_DIR/etc/postfix-main.cf is deploy/postfix/main.cf with this run's
# mailbox list (STATE_DIR/etc/vmailbox) in place of /etc/mailpolicy/vmailbox.
# Ctrl-C (or SIGTERM) drains and stops everything; SIGHUP reloads the daemons.
#   STATE_DIR  Redis data, mail and logs (default /var/lib/mailpolicy)
#   BUILD_DIR  build directory (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
state=${STATE_DIR:-/var/lib/mailpolicy}
config=$root/deploy/config
run_user=mailpolicy

"$root/deploy/install-deps.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
programs=(policyd-spf policyd-ratelimit policyd-greylist delivery-maildir)
cmake --build "$build" -j "$(nproc)" --target "${programs[@]}"

# The daemons never need root: they run as a dedicated system user.
id "$run_user" >/dev/null 2>&1 ||
  useradd --system --home-dir "$state" --no-create-home --shell /usr/sbin/nologin "$run_user"
# STATE_DIR itself is searchable by all: Postfix (user postfix) reads the
# mailbox list's index in STATE_DIR/etc.
install -d -o "$run_user" -g "$run_user" -m 0755 "$state"
install -d -o "$run_user" -g "$run_user" -m 0750 "$state/redis" "$state/mail" "$state/log"
install -d -m 0755 "$state/etc"

# The example configurations of deploy/config/, with this host's paths. The
# daemons start as root only to bind (delivery-maildir's LMTP port 24) and
# drop to the run user themselves ("user").
[ -f "$state/etc/vmailbox" ] || install -m 0644 "$config/vmailbox" "$state/etc/vmailbox"
for name in policyd-spf policyd-ratelimit policyd-greylist delivery-maildir; do
  /usr/bin/python3 - "$config/$name.json" "$state/etc/$name.json" "$state" "$run_user" <<'PY'
import json, sys
src, dst, state, user = sys.argv[1:5]
c = json.load(open(src))
c["user"] = user
if "virtual_base" in c:
    c["virtual_base"] = state + "/mail"
    c["virtual_mailboxes"] = state + "/etc/vmailbox"
json.dump(c, open(dst, "w"), indent=2)
PY
done

# The Postfix snippet with this run's paths (see "Behind Postfix" in README.md).
sed "s#/etc/mailpolicy/vmailbox#$state/etc/vmailbox#g" "$root/deploy/postfix/main.cf" >"$state/etc/postfix-main.cf"

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "run-local: stopping" >&2
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM
trap 'for p in "${pids[@]}"; do kill -HUP "$p" 2>/dev/null || true; done' HUP

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "run-local: nothing listens on 127.0.0.1:$1; see $state/log/" >&2
  return 1
}

if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "run-local: using the Redis already answering on 127.0.0.1:6379" >&2
else
  # setpriv execs redis-server, so $! is Redis itself (a shell function run
  # with & would be a subshell, and killing it would orphan Redis).
  setpriv --reuid="$run_user" --regid="$run_user" --init-groups -- \
    redis-server --bind 127.0.0.1 --port 6379 --dir "$state/redis" \
    --appendonly yes --save "" --protected-mode yes >"$state/log/redis.log" 2>&1 &
  pids+=($!)
  wait_port 6379
fi

start() {
  local name=$1 port=$2
  "$build/$name/$name" --config "$state/etc/$name.json" 2>>"$state/log/$name.log" &
  pids+=($!)
  wait_port "$port"
  echo "run-local: $name on 127.0.0.1:$port (log $state/log/$name.log)" >&2
}
start policyd-spf 10034
start policyd-ratelimit 10032
start policyd-greylist 10023
start delivery-maildir 24

echo "run-local: ready; Ctrl-C stops. Postfix snippet: $state/etc/postfix-main.cf; mail: $state/mail/" >&2
# Any child dying ends the run, so a broken service is never silently missing.
wait -n "${pids[@]}"
echo "run-local: a service exited; see $state/log/" >&2
exit 1
