#!/usr/bin/env bash
# The Debian package, on this machine, as an administrator would meet it:
#   1. cpack -G DEB builds it from the build tree; lintian finds no error
#      (the package carries no overrides);
#   2. dpkg -i installs it: users, config modes, conffiles, stripped programs,
#      dependencies from shlibdeps, /var/vmail; mta-core-postdrop setgid
#      mtadrop, and Postfix's /usr/sbin/sendmail left alone;
#   3. systemd-analyze verify passes on the installed units (their man: links
#      included) and `man policyd-greylist` shows the page;
#   4. policyd-greylist runs from the installed files: the unit's
#      ExecStartPre and ExecStart command lines, as the unit's User=, against
#      a real redis-server on 127.0.0.1:6379 (the installed config's address)
#      in a network namespace of the test's own, so nothing on the host's
#      ports is touched; a policy request gets the greylisting answer and
#      the triplet is in Redis;
#   5. dpkg --purge leaves nothing behind but what the package documents it
#      keeps: the users mailpolicy and vmail, the group mtadrop, and
#      /var/vmail; the helper's statoverride and sendmail links are gone.
# Needs root (dpkg, namespaces). systemd need not be running.
#   package_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
[[ $(id -u) == 0 ]] || { echo "FAIL: needs root (dpkg -i)" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

# One run at a time on a machine (the package is installed system-wide).
exec 9>/run/lock/mailpolicy-package-test.lock
flock -w 600 9 || fail "another package test holds the lock"

if dpkg-query -W -f='${Status}' mailpolicy 2>/dev/null | grep -q 'installed'; then
    fail "mailpolicy is already installed here; this test installs and purges its own copy"
fi

tmp=$(mktemp -d)
cleanup() {
    # A failed run must not leave the package installed.
    if dpkg-query -W -f='${Status}' mailpolicy 2>/dev/null | grep -q 'installed'; then
        dpkg --purge mailpolicy >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# dpkg refuses to run while another dpkg or apt holds its lock (other work
# on this machine): retry that case only, with a deadline.
dpkg_retry() {
    local deadline=$((SECONDS + 180)) out
    while :; do
        if out=$(dpkg "$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
        if grep -q 'lock' <<<"$out" && ((SECONDS < deadline)); then
            sleep 2  # waiting for someone else's dpkg lock, not for our own work
            continue
        fi
        printf '%s\n' "$out" >&2
        return 1
    done
}

# What exists under our names before: compared with what is left after purge.
ours() {
    { find /etc /usr /var/lib/dpkg/info /var/vmail \
          \( -name '*mailpolicy*' -o -name 'policyd-*' -o -name 'delivery-maildir*' -o -path '/var/vmail*' \) \
          -not -path '/usr/local/*' -print 2>/dev/null || true; } | sort
}
ours >"$tmp/before"

step "build the package"
cpack -G DEB -B "$tmp/pkg" --config "$build/CPackConfig.cmake" >"$tmp/cpack.log" 2>&1 ||
    { cat "$tmp/cpack.log"; fail "cpack"; }
deb=$(ls "$tmp"/pkg/mailpolicy_*.deb)
echo "$deb: $(du -k "$deb" | cut -f1) KiB"

step "lintian"
lintian --tag-display-limit 0 --display-level '>=warning' "$deb" | tee "$tmp/lintian.log" || true
if grep -q '^E: ' "$tmp/lintian.log"; then fail "lintian reports errors"; fi
dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -q overrides && fail "the package carries lintian overrides"
dpkg-deb --contents "$deb" | grep -q 'lintian/overrides' && fail "the package carries lintian overrides"

step "dpkg -i"
dpkg_retry -i "$deb"
depends=$(dpkg-query -W -f='${Depends}' mailpolicy)
echo "Depends: $depends"
for dep in adduser libc6 libhiredis libspf2 libssl3; do
    grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep"
done
conffiles=$(dpkg-query -W -f='${Conffiles}' mailpolicy)
for f in policyd-greylist.json policyd-ratelimit.json policyd-spf.json delivery-maildir.json vmailbox; do
    grep -q "/etc/mailpolicy/$f " <<<"$conffiles" || fail "/etc/mailpolicy/$f is not a conffile"
done
id mailpolicy >/dev/null || fail "no user mailpolicy"
id vmail >/dev/null || fail "no user vmail"
for f in policyd-greylist.json policyd-ratelimit.json; do
    mode=$(stat -c '%a %U %G' "/etc/mailpolicy/$f")
    [[ $mode == "640 root mailpolicy" ]] || fail "/etc/mailpolicy/$f is $mode, want 640 root mailpolicy"
done
[[ $(stat -c '%U' /var/vmail) == vmail ]] || fail "/var/vmail is not owned by vmail"
for p in policyd-spf policyd-ratelimit policyd-greylist delivery-maildir; do
    file "/usr/sbin/$p" | grep -q ', stripped' || fail "/usr/sbin/$p is not stripped"
done

step "local submission: mta-core-sendmail and its setgid helper"
mode=$(stat -c '%a %U %G' /usr/sbin/mta-core-postdrop)
[[ $mode == "2755 root mtadrop" ]] || fail "/usr/sbin/mta-core-postdrop is $mode, want 2755 root mtadrop"
for alias in mta-core-mailq mta-core-newaliases; do
    [[ $(readlink "/usr/sbin/$alias") == mta-core-sendmail ]] || fail "/usr/sbin/$alias is not a link to mta-core-sendmail"
done
# Debian's postfix owns /usr/sbin/sendmail where it is installed: kept.
# Where no mail system has one, the package links its own.
if owner=$(dpkg -S /usr/sbin/sendmail 2>/dev/null); then
    [[ ! -L /usr/sbin/sendmail ]] || fail "/usr/sbin/sendmail of ${owner%%:*} was replaced by a link"
else
    [[ $(readlink /usr/sbin/sendmail) == /usr/sbin/mta-core-sendmail ]] || fail "/usr/sbin/sendmail is not ours"
fi
rc=0; /usr/sbin/mta-core-sendmail -bz >"$tmp/sendmail.txt" 2>&1 || rc=$?
[[ $rc == 64 ]] && grep -q '^usage: sendmail' "$tmp/sendmail.txt" || fail "mta-core-sendmail -bz: exit $rc: $(cat "$tmp/sendmail.txt")"

step "systemd-analyze verify"
units=(/usr/lib/systemd/system/{policyd-spf,policyd-ratelimit,policyd-greylist,delivery-maildir}.service)
for u in "${units[@]}"; do [[ -f $u ]] || fail "no unit $u"; done
out=$(systemd-analyze verify "${units[@]}" 2>&1 | grep -E 'policyd-|delivery-maildir' || true)
[[ -z $out ]] || fail "systemd-analyze verify: $out"

step "man policyd-greylist"
MANPAGER=cat MANWIDTH=80 man policyd-greylist >"$tmp/man.txt" 2>&1 || fail "man policyd-greylist: $(cat "$tmp/man.txt")"
sed -n 1,6p "$tmp/man.txt"
grep -q 'greylisting policy service for Postfix' "$tmp/man.txt" || fail "man policyd-greylist"
MANPAGER=cat man 5 policyd-greylist.json >"$tmp/man5.txt" 2>&1 || fail "man 5 policyd-greylist.json"
grep -q 'retry_window' "$tmp/man5.txt" || fail "man 5 policyd-greylist.json lacks retry_window"

step "policyd-greylist from its unit, as its User=, against a real Redis"
unit=/usr/lib/systemd/system/policyd-greylist.service
user=$(sed -n 's/^User=//p' "$unit")
pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
echo "User=$user"
echo "ExecStartPre=$pre"
echo "ExecStart=$start"
[[ -n $user && -n $start ]] || fail "no User= or ExecStart= in $unit"
cat >"$tmp/in-netns.sh" <<'INNER'
set -euo pipefail
user=$1 pre=$2 start=$3 tmp=$4
ip link set lo up
redis-server --bind 127.0.0.1 --port 6379 --dir "$tmp" --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
redis=$!
trap 'kill $daemon $redis 2>/dev/null || true; wait 2>/dev/null || true' EXIT
ready() {  # poll for a listener, with a deadline
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
ready 6379 || { cat "$tmp/redis.log"; echo "FAIL: redis-server did not start" >&2; exit 1; }
# shellcheck disable=SC2086  # the unit's command line, split as systemd does for these plain words
setpriv --reuid="$user" --regid="$user" --init-groups -- $pre
setpriv --reuid="$user" --regid="$user" --init-groups -- $start 2>"$tmp/daemon.log" &
daemon=$!
ready 10023 || { cat "$tmp/daemon.log"; echo "FAIL: policyd-greylist did not listen on 10023" >&2; exit 1; }
running_as=$(ps -o user= -p "$daemon")
[[ $running_as == "$user" ]] || { echo "FAIL: the daemon runs as $running_as" >&2; exit 1; }
reply=$(/usr/bin/python3 - <<'PY'
import socket
s = socket.create_connection(('127.0.0.1', 10023), timeout=10)
s.sendall(b'request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n'
          b'client_address=192.0.2.10\nclient_name=unknown\nhelo_name=mx.example.net\n'
          b'sender=alice@example.net\nrecipient=bob@example.org\ninstance=pkg.1\n\n')
data = b''
while not data.endswith(b'\n\n'):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().strip())
PY
)
echo "reply: $reply"
[[ $reply == "action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds" ]] ||
    { echo "FAIL: unexpected reply" >&2; exit 1; }
keys=$(redis-cli -p 6379 --scan --pattern 'gl:*')
echo "redis: $keys"
[[ -n $keys ]] || { echo "FAIL: no triplet in Redis" >&2; exit 1; }
INNER
unshare --net --fork -- bash "$tmp/in-netns.sh" "$user" "$pre" "$start" "$tmp" ||
    fail "the installed daemon did not answer as expected"

step "dpkg --purge"
dpkg_retry --purge mailpolicy
dpkg-query -W -f='${Status}' mailpolicy 2>/dev/null | grep -q 'installed' && fail "still installed"
ours >"$tmp/after"
left=$(comm -13 "$tmp/before" "$tmp/after" | grep -v -x -e /var/vmail || true)
[[ -z $left ]] || fail "left behind after purge: $left"
id mailpolicy >/dev/null && id vmail >/dev/null || fail "the users must be kept (documented)"
dpkg-statoverride --list /usr/sbin/mta-core-postdrop >/dev/null && fail "the statoverride of mta-core-postdrop is left"
for path in /usr/sbin/sendmail /usr/bin/mailq /usr/bin/newaliases; do
    [[ $(readlink "$path" 2>/dev/null) == /usr/sbin/mta-core-* ]] && fail "$path still links to mta-core"
done
echo "OK: built, lintian-clean, installed, served a request as $user, purged"
