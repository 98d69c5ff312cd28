#!/usr/bin/env bash
# The docker-compose stack, built and run for real under Podman:
#
#   tests/container/compose_test.sh            (as root, from a clone)
#
# 1. Podman settings for this run only (CONTAINERS_CONF, never /etc/containers):
#    the runc runtime, cgroupfs, ulimits this machine permits.
# 2. The base image debian:12-slim, made with debootstrap when no registry
#    is reachable (kept in Podman's storage for the next run).
# 3. Podman's Docker API on a private socket, so that Debian's docker-compose
#    reads deploy/docker-compose.yml as Docker Compose does.
# 4. `docker-compose build`: the images from deploy/Dockerfile, as a user
#    builds them, and a Redis from Debian's package (compose.podman.yml).
# 5. `docker-compose up -d` with both SMTP entries (profiles postfix and
#    mta-core); Podman runs no health checks by itself here (no systemd), so
#    this script runs `podman healthcheck run` until every service is healthy.
# 6. Mail from outside through Postfix and through mta-core: greylisted
#    (450), accepted after `docker-compose kill -s SIGHUP policyd-greylist`
#    reloaded a shorter delay, found in the `mail` volume with the Received-SPF
#    and X-Greylist headers the daemons asked for.
# 7. Redis killed with SIGKILL and started again: the greylisting state is
#    still there (append-only file on the redis-data volume).
# 8. Everything torn down, also on failure: containers, networks, volumes,
#    the API service. Images stay, as the build cache of the next run.
#
# Every wait has a deadline. Exit 0: passed; anything else: failed, with the
# reason and the services' logs. Needs root (rootful Podman), podman, runc,
# docker-compose, debootstrap, swaks and curl (deploy/install-deps.sh).
# Environment: DEBIAN_MIRROR (debootstrap, default deb.debian.org); KEEP=1
# leaves the stack running for a look and prints the commands that remove it.
set -euo pipefail

root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
t0=$(date +%s)

say() { printf '%s [%4ds] %s\n' "$(date -u +%H:%M:%S)" "$(($(date +%s) - t0))" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

# until_ok SECONDS WHAT COMMAND...: run COMMAND until it succeeds, at most
# SECONDS; fail naming WHAT when time is up. Polls every half second.
until_ok() {
  local limit=$1 what=$2 end=$(($(date +%s) + $1))
  shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || fail "$what: not within ${limit}s"
    sleep 0.5
  done
}

# --- 0. Can this machine run containers at all? ------------------------------
[ "$(id -u)" = 0 ] || fail "needs root: the stack runs under rootful Podman"
for tool in podman runc docker-compose debootstrap swaks curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/install-deps.sh installs it)"
done

work=$(mktemp -d /tmp/mailpolicy-compose.XXXXXX)
project=mpc$$
podman_pid=
up_pid=
compose_files=(-f "$root/deploy/docker-compose.yml" -f "$root/tests/container/compose.podman.yml")
compose() {
  timeout "${COMPOSE_TIMEOUT:-120}" docker-compose -p "$project" "${compose_files[@]}" \
    --profile postfix --profile mta-core "$@"
}

# --- 1. Podman settings for this run ------------------------------------------
# crun refuses this kind of machine's hybrid cgroup layout; systemd is not
# PID 1, so cgroupfs, and events to a file instead of the journal. Raising
# ulimits is not permitted here, so they are lowered.
cat > "$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:4096", "nproc=1024:2048"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$work/containers.conf

teardown() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  # A `docker-compose up` still waiting for health checks.
  [ -z "${up_pid:-}" ] || { kill "$up_pid" 2>/dev/null; wait "$up_pid" 2>/dev/null; }
  if [ -n "$podman_pid" ]; then
    if [ "$rc" != 0 ]; then
      say "logs of the failed run:"
      COMPOSE_TIMEOUT=60 compose logs --no-color --tail=40 2>&1 | tail -n 300
      podman ps -a --filter "label=com.docker.compose.project=$project" \
        --format '{{.Names}} {{.Status}}'
    fi
    if [ "${KEEP:-0}" = 1 ]; then
      say "KEEP=1: the stack is left running; to remove it:"
      echo "  export DOCKER_HOST=$DOCKER_HOST CONTAINERS_CONF=$CONTAINERS_CONF MAILPOLICY_TEST_CONFIG=${MAILPOLICY_TEST_CONFIG:-}"
      echo "  docker-compose -p $project ${compose_files[*]} --profile postfix --profile mta-core down --volumes"
      echo "  kill $podman_pid; rm -rf $work"
      exit "$rc"
    fi
    COMPOSE_TIMEOUT=120 compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1
  fi
  # Whatever compose could not remove (a hung API, a killed compose).
  local ids
  ids=$(podman ps -aq --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  [ -z "$ids" ] || timeout 60 podman rm -f -t 0 $ids >/dev/null 2>&1
  ids=$(podman volume ls -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  [ -z "$ids" ] || timeout 60 podman volume rm -f $ids >/dev/null 2>&1
  ids=$(podman network ls -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  [ -z "$ids" ] || timeout 60 podman network rm -f $ids >/dev/null 2>&1
  if [ -n "$podman_pid" ]; then
    kill "$podman_pid" 2>/dev/null
    timeout 30 tail --pid="$podman_pid" -f /dev/null || kill -9 "$podman_pid" 2>/dev/null
  fi
  left=$(podman ps -aq --filter "label=com.docker.compose.project=$project" 2>/dev/null
         podman volume ls -q --filter "label=com.docker.compose.project=$project" 2>/dev/null
         podman network ls -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  [ -z "$left" ] || { say "FAIL: left behind: $left"; rc=1; }
  rm -rf "$work"
  say "$([ "$rc" = 0 ] && echo PASS || echo FAILED) (total $(($(date +%s) - t0))s)"
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# --- 2. The base image ----------------------------------------------------------
# Made from Debian's repository when it is not in Podman's storage yet (no
# registry is reachable here; with one, `podman pull debian:12-slim` does).
# deploy/Dockerfile names every package it relies on, so it builds the same
# on this image and on the official one.
if ! podman image exists docker.io/library/debian:12-slim; then
  say "debootstrap bookworm from $mirror"
  timeout 600 debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" \
    > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  # As the official image: no package lists, no downloaded packages.
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin \
    "$work/rootfs/var/cache/apt/archives/"*.deb
  tar -C "$work/rootfs" -c . | timeout 300 podman import -q - docker.io/library/debian:12-slim >/dev/null \
    || fail "podman import of the debootstrap tree"
  rm -rf "$work/rootfs"
fi
# A machine without user namespaces, cgroups or a working runtime stops here.
out=$(timeout 120 podman run --rm docker.io/library/debian:12-slim true 2>&1) \
  || fail "this machine cannot run containers: $out"
say "podman runs containers (base image debian:12-slim)"

# --- 3. Podman's Docker API for docker-compose ------------------------------------
export DOCKER_HOST=unix://$work/podman.sock
podman system service --time=0 "$DOCKER_HOST" > "$work/podman-service.log" 2>&1 &
podman_pid=$!
until_ok 30 "podman system service answering on $DOCKER_HOST" \
  curl -sf --unix-socket "$work/podman.sock" -o /dev/null http://d/_ping

# --- 4. Build -----------------------------------------------------------------------
export MAILPOLICY_TEST_CONFIG=$work/config   # policyd-greylist's, edited in step 6
cp -r "$root/deploy/config" "$MAILPOLICY_TEST_CONFIG"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
postfix_port=$(free_port)
mta_port=$(free_port)
export POSTFIX_SMTP_PORT=127.0.0.1:$postfix_port MTA_CORE_SMTP_PORT=127.0.0.1:$mta_port
build_start=$(date +%s)
COMPOSE_TIMEOUT=1200 compose build > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; fail "docker-compose build"; }
build_seconds=$(($(date +%s) - build_start))
sizes=$(podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | grep -E 'mailpolicy:latest|mailpolicy-postfix:latest|mailpolicy-test-redis:latest' | sort -u | tr '\n' ';')
say "images built in ${build_seconds}s: $sizes"

# --- 5. Up, and every health check healthy -------------------------------------------
services=(redis policyd-spf policyd-ratelimit policyd-greylist delivery-maildir postfix mta-core)
container() { podman ps -aq --filter "label=com.docker.compose.project=$project" \
                --filter "label=com.docker.compose.service=$1"; }
# Runs each service's health check once; true when all passed.
all_healthy() {
  local s id ok=0
  for s in "${services[@]}"; do
    id=$(container "$s")
    if [ -z "$id" ] || ! timeout 30 podman healthcheck run "$id" >/dev/null 2>&1; then ok=1; fi
  done
  return $ok
}
up_start=$(date +%s)
# `up` waits for depends_on: service_healthy, which only the loop below makes true.
compose up -d --no-build > "$work/up.log" 2>&1 &
up_pid=$!
up_done() { ! kill -0 "$up_pid" 2>/dev/null; }
end=$(($(date +%s) + 240))
while :; do
  if all_healthy && up_done; then break; fi
  [ "$(date +%s)" -lt "$end" ] || { cat "$work/up.log"; fail "every service healthy: not within 240s"; }
  sleep 0.5
done
up_rc=0
wait "$up_pid" || up_rc=$?
up_pid=
[ "$up_rc" = 0 ] || { cat "$work/up.log"; fail "docker-compose up (exit $up_rc)"; }
healthy_seconds=$(($(date +%s) - up_start))
say "all ${#services[@]} services healthy ${healthy_seconds}s after up"

# --- 6. Mail through both SMTP entries; SIGHUP reload ---------------------------------
# The test connects through the published ports on 127.0.0.1; the SMTP
# servers see the bridge's address, which is not in mynetworks: every
# message gets SPF and greylisting. sender.invalid has no SPF record.
smtp() {  # smtp PORT FROM TO: prints swaks' transcript
  timeout 60 swaks --server "127.0.0.1:$1" --helo mail.sender.invalid --from "$2" --to "$3" \
    --header "Subject: compose test $2 to $3" --timeout 30 2>&1 || true
}
expect_greylisted() {  # PORT FROM TO
  local out
  out=$(smtp "$@")
  grep -q '^<\*\* *450.*Greylisted' <<<"$out" || { echo "$out"; fail "$3 via port $1: expected 450 Greylisted"; }
}
accepted() {  # PORT FROM TO: true when the end of DATA got 250
  local out
  out=$(smtp "$@")
  out=$(grep -A1 '^ -> \.$' <<<"$out" || true)
  grep -q '^<- *250 ' <<<"$out"
}
expect_greylisted "$postfix_port" sender@sender.invalid alice@example.org
expect_greylisted "$mta_port" sender@sender.invalid bob@example.org
say "new triplets greylisted through Postfix and through mta-core"

greylist_id=$(container policyd-greylist)
started=$(podman inspect -f '{{.State.StartedAt}}' "$greylist_id")
sed -i 's/"delay": *"[^"]*"/"delay": "1s"/' "$MAILPOLICY_TEST_CONFIG/policyd-greylist.json"
grep -q '"delay": "1s"' "$MAILPOLICY_TEST_CONFIG/policyd-greylist.json" || fail "editing the delay"
compose kill -s SIGHUP policyd-greylist >/dev/null 2>&1 || fail "docker-compose kill -s SIGHUP policyd-greylist"
# The reload took effect: with the shipped 5-minute delay the retries below
# would stay at 450 until long after their deadline.
until_ok 30 "Postfix accepting the retry after the reload" accepted "$postfix_port" sender@sender.invalid alice@example.org
until_ok 30 "mta-core accepting the retry after the reload" accepted "$mta_port" sender@sender.invalid bob@example.org
[ "$(podman inspect -f '{{.State.StartedAt}}' "$greylist_id")" = "$started" ] \
  || fail "policyd-greylist restarted instead of reloading"
timeout 30 podman healthcheck run "$greylist_id" >/dev/null || fail "policyd-greylist unhealthy after SIGHUP"
say "SIGHUP: policyd-greylist reloaded (delay 1s) in the same process, still healthy"

mail_dir=$(podman volume inspect -f '{{.Mountpoint}}' "${project}_mail")
# mail_from USER SENDER: the message from SENDER in USER's Maildir (new/).
mail_from() { grep -l "^From: $2\$" "$mail_dir/example.org/$1/new/"* 2>/dev/null | head -1; }
has_mail() { [ -n "$(mail_from "$1" "$2")" ]; }
check_headers() {  # USER SENDER: that message has both daemons' headers
  local f
  f=$(mail_from "$1" "$2")
  grep -q '^Received-SPF: ' "$f" || { cat "$f"; fail "$1's mail from $2 has no Received-SPF header"; }
  grep -q '^X-Greylist: delayed ' "$f" || { cat "$f"; fail "$1's mail from $2 has no X-Greylist header"; }
}
until_ok 60 "mail for alice (via Postfix) in the mail volume" has_mail alice sender@sender.invalid
until_ok 60 "mail for bob (via mta-core) in the mail volume" has_mail bob sender@sender.invalid
check_headers alice sender@sender.invalid
check_headers bob sender@sender.invalid
say "delivered over LMTP into the mail volume, with Received-SPF and X-Greylist"

# --- 7. Redis killed: greylisting state survives -------------------------------------
redis_id=$(container redis)
# (alice: postmaster@ is on the built-in recipient whitelist, never greylisted)
expect_greylisted "$postfix_port" persist@sender.invalid alice@example.org
in_aof() { podman exec "$redis_id" sh -c 'grep -l persist@sender.invalid /data/appendonlydir/*.aof' >/dev/null 2>&1; }
until_ok 10 "the new triplet in Redis's append-only file" in_aof
redis_started=$(podman inspect -f '{{.State.StartedAt}}' "$redis_id")
compose kill -s SIGKILL redis >/dev/null 2>&1 || fail "docker-compose kill -s SIGKILL redis"
# Podman may restart it at once (restart: unless-stopped): gone, or a new start.
killed() { [ "$(podman inspect -f '{{.State.Running}} {{.State.StartedAt}}' "$redis_id")" != "true $redis_started" ]; }
until_ok 30 "redis killed by SIGKILL" killed
compose start redis >/dev/null 2>&1 || fail "docker-compose start redis"
until_ok 60 "redis healthy again" timeout 30 podman healthcheck run "$redis_id"
keys=$(podman exec "$redis_id" redis-cli --scan --pattern '*persist@sender.invalid*')
[ -n "$keys" ] || fail "greylisting state lost across the Redis restart"
# policyd-greylist uses Redis again once a new triplet is greylisted (not
# waved through on a store error) ...
probe_greylisted() {
  local out
  out=$(smtp "$postfix_port" "probe$RANDOM@sender.invalid" bob@example.org)
  grep -q '^<\*\* *450.*Greylisted' <<<"$out"
}
until_ok 30 "policyd-greylist storing in Redis again" probe_greylisted
# ... and the triplet seen before the kill passes at its first retry.
accepted "$postfix_port" persist@sender.invalid alice@example.org \
  || fail "the triplet greylisted before the Redis kill was greylisted again: state lost"
until_ok 60 "alice's mail from persist@ in the mail volume" has_mail alice persist@sender.invalid
check_headers alice persist@sender.invalid
say "Redis SIGKILL: state kept ($keys), the retry passed"

say "figures: build ${build_seconds}s; up to all healthy ${healthy_seconds}s; images $sizes"
