#!/usr/bin/python3
"""An authoritative DNS server for SPF tests, serving zones written in the
openspf test-suite format (rfc7208-tests.yml, and zones.yml beside it).

Why a real server: policyd-spf resolves through libresolv and
/etc/resolv.conf, so the tests exercise its normal resolver path by running
it in a network namespace whose resolv.conf names 127.0.0.1, where this
server answers on port 53 over UDP and TCP.

Zone data, as the suite defines it (one scenario = one YAML document):
  owner:                       # case-insensitive, no trailing dot needed
    - A: 192.0.2.1             # also AAAA, PTR, CNAME (one string)
    - MX: [10, mx.example]     # [preference, exchange]
    - TXT: "text"              # or a list: one RR, several character-strings
    - SPF: "v=spf1 ..."        # type 99; also published as TXT when the
                               # owner has no TXT entry at all
    - TXT: NONE                # no TXT RR here, and no SPF->TXT copy
    - TIMEOUT                  # queries for types without RRs here go unanswered
Answers: an unknown owner is NXDOMAIN, a known owner without the asked type
an empty NOERROR; both carry an SOA so a caching resolver may keep them
(RFC 2308). CNAMEs inside the zone are followed, a loop ends the chain.
A UDP answer that does not fit (512 bytes, or the client's EDNS0 size) goes
out with TC=1 and no records, so the client retries over TCP (RFC 7766).
Like the suite's own reference driver, empty non-terminals are NXDOMAIN.

Run alone:  suite_dns.py ZONES.yml [SCENARIO] --listen 127.0.0.1:53
(SCENARIO is 1-based; default 1). It prints "serving ..." once both
sockets are bound, and stops on SIGTERM. The conformance runner imports it
and swaps the zone per scenario.
"""

import argparse
import signal
import socket
import struct
import sys
import threading

import yaml
from dnslib import (A, AAAA, CNAME, EDNS0, MX, PTR, QTYPE, RCODE, RR, SOA,
                    TXT, DNSHeader, DNSRecord)

TTL = 60
TYPE_CODES = {'A': 1, 'CNAME': 5, 'PTR': 12, 'MX': 15, 'TXT': 16,
              'AAAA': 28, 'SPF': 99}
TYPE_NAMES = {v: k for k, v in TYPE_CODES.items()}


def owner_key(name):
    return str(name).strip().rstrip('.').lower()


class Zone:
    """records: owner -> type name -> list of values; silent: owners with a
    bare TIMEOUT."""

    def __init__(self, zonedata):
        self.records = {}
        self.silent = set()
        for raw_owner, entries in (zonedata or {}).items():
            owner = owner_key(raw_owner)
            rrsets = self.records.setdefault(owner, {})
            has_txt = False
            spf = []
            for entry in entries or []:
                if isinstance(entry, str):
                    if entry.strip().upper() != 'TIMEOUT':
                        raise ValueError('%s: unknown entry %r' % (owner, entry))
                    self.silent.add(owner)
                    continue
                for rtype, value in entry.items():
                    rtype = str(rtype).upper()
                    if rtype not in TYPE_CODES:
                        raise ValueError('%s: unsupported type %s' % (owner, rtype))
                    if rtype in ('TXT', 'SPF'):
                        has_txt = has_txt or rtype == 'TXT'
                        strings = [str(s) for s in value] if isinstance(value, list) \
                            else [str(value)]
                        if strings == ['NONE']:
                            continue
                        rrsets.setdefault(rtype, []).append(strings)
                        if rtype == 'SPF':
                            spf.append(strings)
                    elif rtype == 'MX':
                        rrsets.setdefault(rtype, []).append((int(value[0]), str(value[1])))
                    else:
                        rrsets.setdefault(rtype, []).append(str(value))
            if spf and not has_txt:
                rrsets.setdefault('TXT', []).extend(spf)

    def lookup(self, name, rtype):
        """Returns (rcode, [(owner, type, value)]) or None to stay silent."""
        chain = []
        seen = set()
        owner = name
        while True:
            rrsets = self.records.get(owner)
            if rrsets is None:
                return RCODE.NXDOMAIN, chain
            if rtype != 'CNAME' and 'CNAME' in rrsets:
                target = rrsets['CNAME'][0]
                chain.append((owner, 'CNAME', target))
                seen.add(owner)
                owner = owner_key(target)
                if owner in seen:
                    return RCODE.NOERROR, chain
                continue
            values = rrsets.get(rtype, [])
            if not values and owner in self.silent:
                return None
            return RCODE.NOERROR, chain + [(owner, rtype, v) for v in values]


def rdata(rtype, value):
    if rtype in ('TXT', 'SPF'):
        # Character-strings longer than 255 bytes are split (RFC 1035 3.3);
        # the suite's non-ASCII text goes out as UTF-8 bytes.
        chunks = []
        for s in value:
            b = s.encode('utf-8')
            chunks.extend([b[i:i + 255] for i in range(0, len(b), 255)] or [b''])
        return TXT(chunks)
    if rtype == 'MX':
        return MX(value[1], value[0])
    return {'A': A, 'AAAA': AAAA, 'PTR': PTR, 'CNAME': CNAME}[rtype](value)


class Server:
    """UDP and TCP on one address, answering from the current zone. Each
    query is noted (name, type, outcome) so a failing test can show what the
    implementation asked."""

    def __init__(self, host, port, zone=None):
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.zone = zone
        self.queries = []
        self.lock = threading.Lock()
        self.udp = socket.socket(family, socket.SOCK_DGRAM)
        self.udp.bind((host, port))
        self.tcp = socket.socket(family, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((host, port))
        self.tcp.listen(64)
        for loop in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=loop, daemon=True).start()

    def set_zone(self, zone):
        with self.lock:
            self.zone = zone
            self.queries = []

    def take_queries(self):
        with self.lock:
            q, self.queries = self.queries, []
        return q

    def answer(self, request):
        q = request.q
        name = owner_key('.'.join(l.decode('utf-8', 'replace') for l in q.qname.label))
        rtype = TYPE_NAMES.get(q.qtype, QTYPE.get(q.qtype, str(q.qtype)))
        reply = DNSRecord(DNSHeader(id=request.header.id, qr=1, aa=1, rd=request.header.rd), q=q)
        found = self.zone.lookup(name, rtype) if self.zone else (RCODE.SERVFAIL, [])
        if found is None:
            self._note(name, rtype, 'TIMEOUT (no answer)')
            return None
        rcode, rrs = found
        reply.header.rcode = rcode
        for owner, t, value in rrs:
            reply.add_answer(RR(owner, TYPE_CODES[t], ttl=TTL, rdata=rdata(t, value)))
        if not rrs or rcode != RCODE.NOERROR:
            reply.add_auth(RR('invalid', QTYPE.SOA, ttl=TTL,
                              rdata=SOA('ns.invalid', 'hostmaster.invalid', (1, 3600, 600, 86400, TTL))))
        self._note(name, rtype, '%s, %d RR' % (RCODE.get(rcode), len(rrs)))
        return reply

    def _note(self, name, rtype, outcome):
        with self.lock:
            self.queries.append('%s %s -> %s' % (name, rtype, outcome))

    def _serve_udp(self):
        while True:
            data, peer = self.udp.recvfrom(4096)
            try:
                request = DNSRecord.parse(data)
            except Exception:  # not DNS: nothing to answer
                continue
            reply = self.answer(request)
            if reply is None:
                continue
            limit = 512
            opt = [r for r in request.ar if r.rtype == QTYPE.OPT]
            if opt:
                limit = max(512, opt[0].rclass)
                reply.add_ar(EDNS0(udp_len=4096))
            packed = reply.pack()
            if len(packed) > limit:
                packed = DNSRecord(DNSHeader(id=request.header.id, qr=1, aa=1, tc=1,
                                             rd=request.header.rd, rcode=reply.header.rcode),
                                   q=request.q).pack()
            self.udp.sendto(packed, peer)

    def _serve_tcp(self):
        while True:
            conn, _ = self.tcp.accept()
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _tcp_conn(self, conn):
        # A silent answer holds the connection until the client gives up
        # (its read times out and it closes), which is what a dropped query
        # looks like over TCP.
        with conn:
            try:
                while True:
                    head = self._read(conn, 2)
                    if head is None:
                        return
                    body = self._read(conn, struct.unpack('!H', head)[0])
                    if body is None:
                        return
                    reply = self.answer(DNSRecord.parse(body))
                    if reply is None:
                        while conn.recv(512):
                            pass
                        return
                    packed = reply.pack()
                    conn.sendall(struct.pack('!H', len(packed)) + packed)
            except Exception:  # a client that went away or sent garbage
                return

    @staticmethod
    def _read(conn, n):
        buf = b''
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


def load_scenarios(path):
    """The YAML stream, one scenario dict per document."""
    with open(path, 'rb') as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def main():
    ap = argparse.ArgumentParser(description='serve one scenario of an SPF suite file')
    ap.add_argument('zones')
    ap.add_argument('scenario', nargs='?', type=int, default=1)
    ap.add_argument('--listen', default='127.0.0.1:53')
    a = ap.parse_args()
    scenario = load_scenarios(a.zones)[a.scenario - 1]
    host, _, port = a.listen.rpartition(':')
    Server(host.strip('[]'), int(port), Zone(scenario.get('zonedata')))
    print('serving %r on %s' % (scenario.get('description', ''), a.listen), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    return 0


if __name__ == '__main__':
    sys.exit(main())
