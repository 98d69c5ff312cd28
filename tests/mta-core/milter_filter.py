#!/usr/bin/python3
# A third-party milter for mta-core's milter client tests, on python3-milter
# (libmilter underneath). What it does is chosen by argv:
#   milter_filter.py SOCKET [--reject-rcpt ADDR] [--tempfail-rcpt ADDR]
#     [--add-header NAME:VALUE] [--insert-header NAME:VALUE]
#     [--change-header NAME:INDEX:VALUE] [--replace-body TEXT]
#     [--add-rcpt ADDR] [--del-rcpt ADDR] [--change-from ADDR]
#     [--quarantine REASON] [--discard] [--tempfail] [--reply 'NNN X.Y.Z text']
#     [--reject-unknown] [--record FILE]
# SOCKET is libmilter's form: inet:PORT@127.0.0.1 or unix:/path.
# --record appends what the filter saw (macros, envelope, header fields,
# body) as lines "event value", for the test to compare.
import argparse
import os
import sys

import Milter

p = argparse.ArgumentParser()
p.add_argument('socket')
p.add_argument('--reject-rcpt', action='append', default=[])
p.add_argument('--tempfail-rcpt', action='append', default=[])
p.add_argument('--add-header', action='append', default=[])
p.add_argument('--insert-header', action='append', default=[])
p.add_argument('--change-header', action='append', default=[])
p.add_argument('--replace-body')
p.add_argument('--add-rcpt', action='append', default=[])
p.add_argument('--del-rcpt', action='append', default=[])
p.add_argument('--change-from')
p.add_argument('--quarantine')
p.add_argument('--discard', action='store_true')
p.add_argument('--tempfail', action='store_true')
p.add_argument('--reply')
p.add_argument('--record')
p.add_argument('--reject-unknown', action='store_true')
args = p.parse_args()


def record(event, value):
    if args.record:
        with open(args.record, 'a') as f:
            f.write('%s %s\n' % (event, value))


class Filter(Milter.Base):
    def connect(self, hostname, family, hostaddr):
        record('connect', '%s %s j=%s daemon_name=%s v=%s _=%s' % (
            hostname, hostaddr[0], self.getsymval('j'), self.getsymval('{daemon_name}'),
            self.getsymval('v'), self.getsymval('_')))
        return Milter.CONTINUE

    def hello(self, name):
        record('helo', name)
        return Milter.CONTINUE

    def envfrom(self, sender, *params):
        record('mail', sender)
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        record('rcpt', '%s rcpt_addr=%s' % (to, self.getsymval('{rcpt_addr}')))
        bare = to.strip('<>')
        if bare in args.reject_rcpt:
            if args.reply:
                code, xcode, text = args.reply.split(' ', 2)
                self.setreply(code, xcode, text)
            return Milter.REJECT
        if bare in args.tempfail_rcpt:
            return Milter.TEMPFAIL
        return Milter.CONTINUE

    # No reply to header fields (SMFIP_NR_HDR): the MTA must not wait.
    @Milter.noreply
    def header(self, name, value):
        record('header', '%s: %s' % (name, value))
        return Milter.CONTINUE

    def eoh(self):
        record('eoh', 'i=%s' % self.getsymval('i'))
        return Milter.CONTINUE

    def body(self, chunk):
        record('body', repr(chunk))
        return Milter.CONTINUE

    def eom(self):
        record('eom', 'i=%s' % self.getsymval('i'))
        for h in args.add_header:
            name, value = h.split(':', 1)
            self.addheader(name, value)
        for h in args.insert_header:
            name, value = h.split(':', 1)
            self.addheader(name, value, 0)
        for h in args.change_header:
            name, index, value = h.split(':', 2)
            self.chgheader(name, int(index), value)
        if args.replace_body is not None:
            self.replacebody(args.replace_body.encode().replace(b'\\n', b'\r\n'))
        for r in args.add_rcpt:
            self.addrcpt('<%s>' % r)
        for r in args.del_rcpt:
            self.delrcpt('<%s>' % r)
        if args.change_from:
            self.chgfrom('<%s>' % args.change_from)
        if args.quarantine:
            self.quarantine(args.quarantine)
        if args.discard:
            return Milter.DISCARD
        if args.tempfail:
            return Milter.TEMPFAIL
        if args.reply and not args.reject_rcpt:
            code, xcode, text = args.reply.split(' ', 2)
            self.setreply(code, xcode, text)
            return Milter.REJECT if code.startswith('5') else Milter.TEMPFAIL
        return Milter.CONTINUE

    def unknown(self, cmd):
        record('unknown', cmd.decode() if isinstance(cmd, bytes) else cmd)
        return Milter.REJECT if args.reject_unknown else Milter.CONTINUE

    def abort(self):
        record('abort', '')
        return Milter.CONTINUE

    def close(self):
        return Milter.CONTINUE


Milter.factory = Filter
Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY | Milter.ADDRCPT | Milter.DELRCPT |
                 Milter.QUARANTINE | Milter.CHGFROM)
# A unix socket must be writable by mta-core's mail_owner, as for Postfix.
os.umask(0)
sys.stdout.flush()
Milter.runmilter('mta-core-test', args.socket, timeout=60)
