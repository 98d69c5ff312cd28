#!/usr/bin/python3
"""Process-level test of deploy/docker-compose.yml: no container engine, but
the same command lines and health checks as the compose services, run as
processes, then mail sent through the stack end to end.

How the compose world is reproduced on one host, inside private network and
mount namespaces of this process (so nothing leaks to the host and the fixed
compose ports cannot collide with anything):
  * every service name resolves to 127.0.0.1 (/etc/hosts is bind-mounted);
  * each volume is bind-mounted at its target path: bind volumes from their
    source (deploy/config, deploy/postfix), named volumes from a temp dir;
  * program names resolve to the build's binaries through PATH, and
    `postfix-entrypoint` to deploy/postfix/docker-entrypoint.sh;
  * /etc/postfix and /var/lib/postfix are private copies, so Postfix's
    entrypoint can write its config without touching the host's;
  * a DNS server answers the SPF lookups (resolv.conf points at it).
Mount points missing on the host (e.g. /etc/mailpolicy) are created empty
and removed again at the end.

Usage: stack_test.py SOURCE_DIR BIN_DIR...   (root only)
"""

import ctypes
import json
import select
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

import yaml

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG = 1

libc = ctypes.CDLL(None, use_errno=True)
failures = []


def check(cond, what, detail=''):
    print(('ok   ' if cond else 'FAIL ') + what, flush=True)
    if not cond:
        failures.append(what)
        if detail:
            print('     ' + detail.replace('\n', '\n     '), flush=True)


def sys_ok(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def mount_bind(src, dst):
    sys_ok(libc.mount(src.encode(), dst.encode(), None, MS_BIND | MS_REC, None),
           'bind %s -> %s' % (src, dst))


def wait_tcp(port, timeout=20.0, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)  # polling interval
    return False


def unescape(value):
    # Compose writes a literal '$' as '$$'; the container sees '$'.
    if isinstance(value, list):
        return [unescape(v) for v in value]
    return value.replace('$$', '$') if isinstance(value, str) else value


def first_port(command):
    for arg in command:
        if arg.startswith('inet:0.0.0.0:'):
            return int(arg.rsplit(':', 1)[1])
    if '--port' in command:
        return int(command[command.index('--port') + 1])
    return None


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    src = os.path.abspath(sys.argv[1])
    bin_dirs = [os.path.abspath(d) for d in sys.argv[2:]]
    if os.geteuid() != 0:
        print('stack_test: must run as root')
        return 1
    deploy = os.path.join(src, 'deploy')
    out = subprocess.run(['docker-compose', '-f', os.path.join(deploy, 'docker-compose.yml'),
                          '--profile', 'postfix', 'config'],
                         capture_output=True, text=True, check=True).stdout
    services = yaml.safe_load(out)['services']
    check(set(services) == {'redis', 'policyd-spf', 'policyd-ratelimit', 'policyd-greylist',
                            'delivery-maildir', 'postfix', 'mta-core'},
          'compose defines the expected services', str(sorted(services)))
    for name, svc in services.items():
        check('healthcheck' in svc, name + ' has a health check')
        if name != 'postfix':
            check(svc.get('user') not in (None, 'root', '0'), name + ' runs as a non-root user')
    # The SMTP entry imitated here is Postfix; mta-core's service runs in the
    # container test (tests/container/compose_test.sh).
    services.pop('mta-core', None)

    tmp = tempfile.mkdtemp(prefix='mpstack.')
    os.chmod(tmp, 0o755)
    created = []
    mounted = []
    child_failed = False
    try:
        sys_ok(libc.unshare(CLONE_NEWNET | CLONE_NEWNS), 'unshare')
        sys_ok(libc.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None), 'make / private')
        env = prepare(src, deploy, bin_dirs, services, tmp, created, mounted)
        # The next child is the first process of a new pid namespace.
        sys_ok(libc.unshare(CLONE_NEWPID), 'unshare pid')
        alive_r, alive_w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            # PID 1 of a new pid namespace. If the parent dies (a CTest
            # timeout kills it), this gets SIGKILL and the kernel kills every
            # process of the namespace: no service outlives the test.
            os.close(alive_w)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if select.select([alive_r], [], [], 0)[0]:
                os._exit(1)  # the parent is already gone
            os._exit(run_services(src, services, tmp, env))
        os.close(alive_r)
        _, status = os.waitpid(pid, 0)
        child_failed = status != 0
    except Exception as e:  # reported as a failure, after cleaning up
        check(False, 'stack set up', '%s: %s' % (type(e).__name__, e))
    finally:
        for target in reversed(mounted):
            libc.umount2(target.encode(), MNT_DETACH)
        for d in reversed(created):
            try:
                os.rmdir(d)
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures or child_failed else 0


def run_services(src, services, tmp, env):
    procs = {}
    try:
        start_and_use(src, services, tmp, env, procs)
    except Exception as e:  # reported as a failure, after stopping what runs
        check(False, 'stack ran to the end', '%s: %s' % (type(e).__name__, e))
    finally:
        for name, p in reversed(list(procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if name != 'dns' and name != 'postfix':
                check(p.returncode == 0, name + ' exits 0 on SIGTERM', 'exit %s' % p.returncode)
        if failures:
            for name in procs:
                log = os.path.join(tmp, name + '.log')
                if os.path.exists(log):
                    print('--- %s\n%s' % (name, open(log, errors='replace').read()[-4000:]))
    print('%d failed' % len(failures), flush=True)
    return 1 if failures else 0


def prepare(src, deploy, bin_dirs, services, tmp, created, mounted):
    """Network, mounts and program names, in the namespaces just entered."""
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    # An address outside mynetworks, for a client the policies apply to.
    subprocess.run(['ip', 'addr', 'add', '192.0.2.10/32', 'dev', 'lo'], check=True)

    def bind(source, target):
        if not os.path.exists(target):
            parent = os.path.dirname(target)
            missing = []
            while not os.path.exists(parent):
                missing.append(parent)
                parent = os.path.dirname(parent)
            for d in reversed(missing):
                os.mkdir(d)
                created.append(d)
            if os.path.isdir(source):
                os.mkdir(target)
            else:
                open(target, 'a').close()
            created.append(target)
        mount_bind(source, target)
        mounted.append(target)

    with open(os.path.join(tmp, 'hosts'), 'w') as f:
        f.write('127.0.0.1 localhost %s\n' % ' '.join(services))
    bind(os.path.join(tmp, 'hosts'), '/etc/hosts')
    with open(os.path.join(tmp, 'resolv.conf'), 'w') as f:
        f.write('nameserver 127.0.0.1\noptions timeout:1 attempts:2\n')
    bind(os.path.join(tmp, 'resolv.conf'), '/etc/resolv.conf')
    for d in ('/etc/postfix', '/var/lib/postfix'):
        copy = os.path.join(tmp, 'private' + d.replace('/', '_'))
        shutil.copytree(d, copy, symlinks=True)
        bind(copy, d)
    subprocess.run(['chown', '-R', 'postfix:postfix', os.path.join(tmp, 'private_var_lib_postfix')],
                   check=True)

    # Volumes, as compose would mount them.
    for name, svc in services.items():
        for vol in svc.get('volumes', []):
            # "SOURCE:TARGET:MODE" (docker-compose 1.x) or the long form.
            if isinstance(vol, str):
                source, target = vol.split(':')[:2]
            else:
                source, target = vol['source'], vol['target']
            if not source.startswith('/'):  # a named volume
                source = os.path.join(tmp, 'volume-' + source)
                if not os.path.exists(source):
                    os.mkdir(source)
            if target not in mounted:
                bind(source, target)

    # Program names -> build outputs; the Postfix image's entrypoint.
    bindir = os.path.join(tmp, 'bin')
    os.mkdir(bindir)
    for prog in ('policyd-spf', 'policyd-ratelimit', 'policyd-greylist', 'delivery-maildir'):
        found = [os.path.join(d, prog) for d in bin_dirs if os.path.exists(os.path.join(d, prog))]
        if not found:
            raise RuntimeError('no built ' + prog + ' in ' + ' '.join(bin_dirs))
        os.symlink(found[0], os.path.join(bindir, prog))
    os.symlink(os.path.join(deploy, 'postfix', 'docker-entrypoint.sh'),
               os.path.join(bindir, 'postfix-entrypoint'))
    return dict(os.environ, PATH=bindir + ':/usr/sbin:/usr/bin:/sbin:/bin')


def start_and_use(src, services, tmp, env, procs):
    zone = {'pass.example': {'TXT': ['v=spf1 ip4:192.0.2.0/24 -all']},
            'mail.pass.example': {'TXT': ['v=spf1 ip4:192.0.2.0/24 -all']},
            'fail.example': {'TXT': ['v=spf1 -all']}}
    with open(os.path.join(tmp, 'zone.json'), 'w') as f:
        json.dump(zone, f)
    procs['dns'] = subprocess.Popen(
        ['/usr/bin/python3', os.path.join(src, 'tests', 'e2e', 'dns_server.py'),
         os.path.join(tmp, 'zone.json')],
        stdout=open(os.path.join(tmp, 'dns.log'), 'w'), stderr=subprocess.STDOUT)
    check(wait_tcp(53, proc=procs['dns']), 'test DNS server is up')

    # Start in dependency order, each with its exact compose command line.
    order = ['redis', 'policyd-spf', 'policyd-ratelimit', 'policyd-greylist',
             'delivery-maildir', 'postfix']
    for name in order:
        svc = services[name]
        command = unescape(svc['command'])
        if isinstance(command, str):
            command = command.split()
        log = open(os.path.join(tmp, name + '.log'), 'w')
        procs[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        port = first_port(command) or (25 if name == 'postfix' else None)
        up = wait_tcp(port, timeout=30, proc=procs[name])
        check(up, '%s listens on %d (%s)' % (name, port, ' '.join(command)))
        if not up:
            raise RuntimeError(name + ' did not start')
        test = unescape(svc['healthcheck']['test'])
        if test[0] == 'CMD-SHELL':
            test = ['sh', '-c', test[1]]
        elif test[0] == 'CMD':
            test = test[1:]
        hc = subprocess.run(test, env=env, capture_output=True, text=True, timeout=30)
        check(hc.returncode == 0, name + ' health check passes', hc.stdout + hc.stderr)

    send_mail_through_the_stack(tmp)


def send_mail_through_the_stack(tmp):
    def rcpt_reply(sender, rcpt, source):
        with smtplib.SMTP('127.0.0.1', 25, source_address=(source, 0), timeout=30) as s:
            s.ehlo('mail.pass.example')
            s.mail(sender)
            return s.rcpt(rcpt)

    # From outside: SPF (via DNS) and greylisting (via Redis) decide.
    code, text = rcpt_reply('someone@fail.example', 'alice@example.org', '192.0.2.10')
    check(code == 550 and b'SPF' in text, 'SPF fail from outside gets 550', '%d %s' % (code, text))
    code, text = rcpt_reply('someone@pass.example', 'alice@example.org', '192.0.2.10')
    check(code == 450 and b'Greylisted' in text, 'new triplet from outside gets 450',
          '%d %s' % (code, text))
    # Unknown mailbox: refused at RCPT by Postfix from the shared mailbox list.
    code, text = rcpt_reply('app@example.org', 'nobody@example.org', '127.0.0.1')
    check(code == 550, 'unknown mailbox gets 550', '%d %s' % (code, text))

    # From mynetworks: accepted, through LMTP into the mail volume.
    msg = ('From: app@example.org\r\nTo: bob@example.org\r\nSubject: stack-test\r\n\r\n'
           'through the whole stack\r\n')
    with smtplib.SMTP('127.0.0.1', 25, source_address=('127.0.0.1', 0), timeout=30) as s:
        refused = s.sendmail('app@example.org', ['bob@example.org'], msg)
    check(not refused, 'trusted client mail accepted')
    maildir = '/var/vmail/example.org/bob/new'
    found = ''
    end = time.monotonic() + 30
    while time.monotonic() < end and not found:
        for fn in os.listdir(maildir) if os.path.isdir(maildir) else []:
            body = open(os.path.join(maildir, fn), errors='replace').read()
            if 'stack-test' in body:
                found = body
        time.sleep(0.05)  # polling interval
    check('through the whole stack' in found and found.startswith('Return-Path: <app@example.org>'),
          'message delivered into the mail volume by delivery-maildir',
          found or open(os.path.join(tmp, 'postfix.log'), errors='replace').read()[-3000:])


if __name__ == '__main__':
    sys.exit(main())
