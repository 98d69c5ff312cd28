#!/usr/bin/env bash
# The README's "Behind Postfix in five minutes", run as written: the shell
# blocks that follow a "checked by tests/e2e/readme_postfix_test.sh" comment
# in README.md, with ./deploy/run-local.sh running beside them, against the
# machine's own Postfix package. Then what the README says must hold: the
# greylisting answer, a message from this host delivered into the Maildir
# over LMTP, an unknown mailbox refused with 550 5.1.1; and delivery-maildir
# answers the RCPT codes its documentation gives (501 and 550 5.1.3).
#
# Isolation: everything runs in new mount, network and PID namespaces. /etc,
# Postfix's queue and data directories and run-local's state directory are
# private copies or empty directories there, so the README's writes to
# /etc/postfix/main.cf, /etc/aliases.db and /var/lib/mailpolicy never touch
# the host, ports 25, 10023, 6379 ... are the namespace's own, and every
# process started dies with the namespace.
# Needs root.   readme_postfix_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
[[ $(id -u) == 0 ]] || { echo "FAIL: needs root (namespaces, Postfix)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The README's checked blocks, in order.
/usr/bin/python3 - "$src/README.md" "$tmp" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r'checked by tests/e2e/readme_postfix_test\.sh[^\n]*\n```sh\n(.*?)```', text, re.S)
if len(blocks) != 2:
    sys.exit('FAIL: expected 2 checked blocks in README.md, found %d' % len(blocks))
for i, b in enumerate(blocks, 1):
    open('%s/block%d.sh' % (sys.argv[2], i), 'w').write(b)
PY

cp -a /etc "$tmp/etc"
mkdir -p "$tmp/spool" "$tmp/postfix-data" "$tmp/state"

cat >"$tmp/inner.sh" <<'INNER'
set -euo pipefail
src=$1 build=$2 tmp=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
ip link set lo up
mount --bind "$tmp/etc" /etc
mount --bind "$tmp/spool" /var/spool/postfix
mount --bind "$tmp/postfix-data" /var/lib/postfix
mkdir -p /var/lib/mailpolicy
mount --bind "$tmp/state" /var/lib/mailpolicy
chown postfix:postfix /var/lib/postfix

BUILD_DIR=$build "$src/deploy/run-local.sh" >"$tmp/run-local.log" 2>&1 &
runlocal=$!
for _ in $(seq 1 600); do   # poll for readiness, with a deadline (60 s)
    grep -q 'run-local: ready' "$tmp/run-local.log" && break
    kill -0 $runlocal 2>/dev/null || { cat "$tmp/run-local.log"; fail "run-local.sh exited"; }
    sleep 0.1
done
grep -q 'run-local: ready' "$tmp/run-local.log" || { cat "$tmp/run-local.log"; fail "run-local.sh not ready"; }

echo "== README block 1 (set Postfix up)"
(cd "$src" && bash -ex "$tmp/block1.sh") || fail "a command of README block 1 failed"

echo "== README block 2 (check)"
# Not -e: the swaks to an unknown mailbox exits non-zero, as the README shows.
(cd "$src" && bash -x "$tmp/block2.sh") >"$tmp/block2.out" 2>&1 || true
cat "$tmp/block2.out"
grep -q '^action=DEFER_IF_PERMIT Greylisted, please try again in 300 seconds' "$tmp/block2.out" ||
    fail "no greylisting answer"
grep -q '<\*\* *550 5.1.1 <nobody@example.org>' "$tmp/block2.out" || fail "the unknown mailbox was not refused with 550 5.1.1"
shopt -s nullglob
for _ in $(seq 1 200); do   # Postfix delivers asynchronously: poll, with a deadline (20 s)
    mail=(/var/lib/mailpolicy/mail/example.org/alice/new/*)
    ((${#mail[@]} > 0)) && break
    sleep 0.1
done
((${#mail[@]} == 1)) || fail "expected one message in alice's new/, found ${#mail[@]}"
grep -q '^Delivered-To: alice@example.org' "${mail[0]}" || fail "the message lacks Delivered-To"

echo "== delivery-maildir's documented RCPT replies"
replies=$(printf 'LHLO x\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<../x@example.org>\r\nRCPT TO:<a/b@example.org>\r\nQUIT\r\n' |
          nc -N 127.0.0.1 24)
echo "$replies"
grep -q '^501 5.1.3 ' <<<"$replies" || fail "../x@example.org: expected 501 5.1.3"
grep -q '^550 5.1.3 ' <<<"$replies" || fail "a/b@example.org: expected 550 5.1.3"

postfix stop >/dev/null 2>&1 || true
kill -TERM $runlocal
wait $runlocal || true
echo "OK: the README's Postfix path works as written"
INNER
unshare --mount --net --pid --fork --mount-proc --propagation private -- \
    bash "$tmp/inner.sh" "$src" "$build" "$tmp"
