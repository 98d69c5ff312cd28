#!/usr/bin/python3
"""The openspf RFC 7208 test suite (rfc7208-tests.yml, beside this file)
against the built policyd-spf, through the policy protocol.

  conformance.py --daemon PATH --config JSON [--expect N] [--suite YML]
                 [--scenario TEXT]... [--test NAME]... [-v]

How: as root, it makes a network namespace of its own (named after its PID,
so parallel runs never share one) with only a loopback interface, and a
resolv.conf for it under /etc/netns/NAME/ (which `ip netns exec` bind-mounts
over /etc/resolv.conf). It then runs itself again inside the namespace,
where suite_dns.py answers on 127.0.0.1:53. Per scenario it swaps the zone
and starts a fresh daemon, so no DNS cache carries answers from one scenario
to the next; the daemon listens on a unix socket in a temp dir.

Each test is one RCPT request (client_address = the test's host, helo_name,
sender = mailfrom). The configuration given must make the daemon prepend a
Received-SPF header for every result and never reject or defer (see
conformance.json): the header's result word is the result, and its
identity= must be the identity the test checks (mailfrom, or helo for a
null sender). Explanations cannot be seen through a header, so `exp=` tests
are judged on their result alone (and marked so).

Exit status 0 only when every selected test passed and, with --expect, the
number passed is exactly N: a suite that silently shrank fails too.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # nothing generated in the source tree
import suite_dns  # noqa: E402

INSIDE = 'MAILPOLICY_SPF_CONFORMANCE_NS'
HEADER = re.compile(r'^PREPEND Received-SPF: (\S+)\b(.*)$', re.I)
IDENTITY = re.compile(r'\bidentity=(\w+)')
NAMES = {'pass', 'fail', 'softfail', 'neutral', 'none', 'permerror', 'temperror'}


def run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (' '.join(argv), r.returncode, r.stdout.strip()))


def outside(args, argv):
    """Make the namespace, run inside it, always remove it."""
    if os.geteuid() != 0:
        print('FAIL: the suite needs root for its network namespace', file=sys.stderr)
        return 1
    ns = 'spfc%d' % os.getpid()
    etc = '/etc/netns/' + ns
    run(['ip', 'netns', 'add', ns])
    try:
        run(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'])
        os.makedirs(etc, exist_ok=True)
        # No search domain, so nothing in the namespace turns a suite name
        # into name.<host's domain>; one 1 s attempt keeps TIMEOUT tests short.
        with open(etc + '/resolv.conf', 'w') as f:
            f.write('nameserver 127.0.0.1\noptions timeout:1 attempts:1\n')
        env = dict(os.environ, **{INSIDE: ns})
        return subprocess.call(['ip', 'netns', 'exec', ns, sys.executable,
                                os.path.abspath(__file__)] + argv, env=env)
    finally:
        subprocess.call(['ip', 'netns', 'del', ns])
        for path in (etc + '/resolv.conf',):
            if os.path.exists(path):
                os.unlink(path)
        for d in (etc, '/etc/netns'):
            try:
                os.rmdir(d)  # /etc/netns only when no one else uses it
            except OSError:
                pass


class Daemon:
    """One policyd-spf for one scenario, on a unix socket."""

    def __init__(self, args, tmp, n):
        self.sock_path = os.path.join(tmp, 'spf%d.sock' % n)
        self.log = open(os.path.join(tmp, 'spf%d.log' % n), 'w+')
        self.proc = subprocess.Popen([args.daemon, '--config', args.config,
                                      '--listen', 'unix:' + self.sock_path],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        # Poll for the socket to accept, with a deadline: the daemon has no
        # readiness signal outside systemd.
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('policyd-spf exited with %d: %s' % (self.proc.returncode, self.output()))
            try:
                self.conn = socket.socket(socket.AF_UNIX)
                self.conn.settimeout(args.test_timeout)
                self.conn.connect(self.sock_path)
                break
            except OSError:
                self.conn.close()
                if time.monotonic() > deadline:
                    raise RuntimeError('policyd-spf did not listen within 20 s: ' + self.output())
                time.sleep(0.05)
        self.reader = self.conn.makefile('rb')

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def ask(self, attrs):
        self.conn.sendall(''.join('%s=%s\n' % kv for kv in attrs).encode() + b'\n')
        lines = []
        while True:
            line = self.reader.readline()
            if not line:
                raise RuntimeError('connection closed by policyd-spf')
            line = line.rstrip(b'\n').decode('utf-8', 'replace')
            if not line:
                return lines
            lines.append(line)

    def stop(self):
        self.reader.close()
        self.conn.close()
        self.proc.terminate()  # our own child, by PID
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def judge(test, lines):
    """(ok, what the daemon said, note)."""
    action = next((l[7:] for l in lines if l.startswith('action=')), None)
    if action is None:
        return False, '(no action)', ' | '.join(lines)
    m = HEADER.match(action)
    if not m or m.group(1).lower() not in NAMES:
        return False, '(%s)' % action.split(' ', 1)[0], action
    got = m.group(1).lower()
    identity = IDENTITY.search(m.group(2))
    wanted_identity = 'mailfrom' if test.get('mailfrom') else 'helo'
    if not identity or identity.group(1).lower() != wanted_identity:
        return False, got, 'header for identity=%s, the test checks %s' % (
            identity.group(1) if identity else '?', wanted_identity)
    expected = test['result'] if isinstance(test['result'], list) else [test['result']]
    ok = got in [str(r).lower() for r in expected]
    note = 'explanation not visible in a header' if ok and 'explanation' in test else ''
    return ok, got, note


def inside(args):
    scenarios = suite_dns.load_scenarios(args.suite)
    server = suite_dns.Server('127.0.0.1', 53)
    passed = failed = 0
    failures = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='spf-conformance.') as tmp:
        for number, scenario in enumerate(scenarios, 1):
            title = str(scenario.get('description', 'scenario %d' % number))
            if args.scenario and not any(s.lower() in title.lower() or s == str(number)
                                         for s in args.scenario):
                continue
            tests = [(name, t) for name, t in (scenario.get('tests') or {}).items()
                     if not args.test or name in args.test]
            if not tests:
                continue
            server.set_zone(suite_dns.Zone(scenario.get('zonedata')))
            daemon = Daemon(args, tmp, number)
            try:
                for i, (name, t) in enumerate(tests):
                    attrs = [('request', 'smtpd_access_policy'), ('protocol_state', 'RCPT'),
                             ('protocol_name', 'ESMTP'), ('client_address', str(t['host'])),
                             ('client_name', 'unknown'), ('reverse_client_name', 'unknown'),
                             ('helo_name', str(t.get('helo') or '')),
                             ('sender', str(t.get('mailfrom') or '')),
                             ('recipient', 'postmaster@example.net'),
                             # a new instance per test: no per-message cache may answer
                             ('instance', 'conformance.%d.%d' % (number, i)), ('size', '0')]
                    server.take_queries()
                    t0 = time.monotonic()
                    try:
                        ok, got, note = judge(t, daemon.ask(attrs))
                    except (OSError, RuntimeError) as e:
                        ok, got, note = False, '(no reply)', str(e)
                    took = time.monotonic() - t0
                    queries = server.take_queries()
                    expected = t['result'] if isinstance(t['result'], list) else [t['result']]
                    print('%-4s %-26.26s %-24s expected=%-18s got=%s%s%s' % (
                        'ok' if ok else 'FAIL', title, name, '|'.join(map(str, expected)), got,
                        '  (%s)' % note if note else '', '  [%.1fs]' % took if took > 2 else ''),
                        flush=True)
                    if ok:
                        passed += 1
                    else:
                        failed += 1
                        failures.append(name)
                    if (not ok and args.verbose) or args.verbose > 1:
                        for q in queries:
                            print('       dns ' + q)
            finally:
                daemon.stop()
    print('\n%d passed, %d failed (%.0f s)' % (passed, failed, time.monotonic() - start))
    if failures:
        print('failed: ' + ' '.join(failures))
    if args.expect is not None and passed != args.expect:
        print('FAIL: expected %d tests to pass, %d did' % (args.expect, passed))
        return 1
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--daemon', required=True, help='the built policyd-spf')
    ap.add_argument('--config', required=True, help='its JSON configuration')
    ap.add_argument('--suite', default=os.path.join(HERE, 'rfc7208-tests.yml'))
    ap.add_argument('--expect', type=int, help='exactly this many tests must pass')
    ap.add_argument('--scenario', action='append', default=[],
                    help='only scenarios whose title contains TEXT, or number N')
    ap.add_argument('--test', action='append', default=[], help='only this test')
    ap.add_argument('--test-timeout', type=float, default=20, help='seconds per request')
    ap.add_argument('-v', '--verbose', action='count', default=0,
                    help='show the DNS queries of failed tests (-vv: of all)')
    args = ap.parse_args()
    args.daemon = os.path.abspath(args.daemon)
    args.config = os.path.abspath(args.config)
    if os.environ.get(INSIDE):
        return inside(args)
    return outside(args, sys.argv[1:])


if __name__ == '__main__':
    sys.exit(main())
