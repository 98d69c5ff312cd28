#!/usr/bin/python3
"""Authoritative DNS server for end-to-end tests (dnslib), UDP and TCP.

Serves a JSON zone file: {"name": {"TXT": ["v=spf1 ..."], "A": ["1.2.3.4"],
"MX": [[10, "mx.name"]]}}. An unknown name gets NXDOMAIN, a known name without
the asked type an empty NOERROR answer; both carry a SOA so resolvers cache
them (RFC 2308). Runs in the test's private network namespace on 127.0.0.1:53,
where the namespace's resolv.conf points, so the SPF daemon uses its normal
resolver code. Stops on SIGTERM.
"""

import argparse
import json
import signal
import sys
import threading

from dnslib import A, AAAA, MX, QTYPE, RCODE, RR, SOA, TXT
from dnslib.server import BaseResolver, DNSServer


def norm(name):
    return str(name).rstrip('.').lower()


class ZoneResolver(BaseResolver):
    def __init__(self, zone):
        self.zone = {norm(k): v for k, v in zone.items()}

    def resolve(self, request, handler):
        reply = request.reply()
        qname = request.q.qname
        qtype = QTYPE[request.q.qtype]
        records = self.zone.get(norm(qname))
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            for value in records.get(qtype, []):
                reply.add_answer(RR(qname, request.q.qtype, ttl=60, rdata=rdata(qtype, value)))
        if not reply.rr:
            reply.add_auth(RR('test.', QTYPE.SOA, ttl=60,
                              rdata=SOA('ns.test.', 'hostmaster.test.', (1, 60, 60, 60, 60))))
        return reply


def rdata(qtype, value):
    if qtype == 'A':
        return A(value)
    if qtype == 'AAAA':
        return AAAA(value)
    if qtype == 'MX':
        return MX(value[1], value[0])
    if qtype == 'TXT':
        return TXT(value.encode())
    raise ValueError('unsupported type ' + qtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('zone')
    ap.add_argument('--listen', default='127.0.0.1:53')
    args = ap.parse_args()
    host, port = args.listen.rsplit(':', 1)
    with open(args.zone) as f:
        resolver = ZoneResolver(json.load(f))
    servers = [DNSServer(resolver, address=host, port=int(port), tcp=tcp) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print('dns_server: serving %d names on %s' % (len(resolver.zone), args.listen), flush=True)
    done.wait()
    for s in servers:
        s.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
