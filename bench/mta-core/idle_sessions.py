#!/usr/bin/python3
"""Open N sessions to an SMTP server, each past EHLO, and keep them idle;
then print the server's resident memory and how long a new client waits
for its banner. Usage: idle_sessions.py PORT N SERVER_PID [tls]
With tls, each session is past STARTTLS and a second EHLO (opened one after
another: the handshakes are the client's work, not what is measured).

Runs in one process with non-blocking sockets (selectors); raises its own
file limit to what it needs (hard limit permitting)."""
import resource, selectors, socket, ssl, sys, time

port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tls = len(sys.argv) > 4 and sys.argv[4] == "tls"
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))

def rss_mb(p):
    with open('/proc/%d/status' % p) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return -1

sel = selectors.DefaultSelector()
state = {}

def pump(seconds, until_done=False):
    """Answer banners with EHLO and retire sessions past their EHLO reply."""
    deadline = time.time() + seconds
    while time.time() < deadline and not (until_done and len(sel.get_map()) == 0):
        for key, _ in sel.select(timeout=0.05):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            state[sock] += data
            if key.data == 'banner' and b'\r\n' in state[sock]:
                sock.send(b'EHLO idle.example\r\n'); state[sock] = b''
                sel.modify(sock, selectors.EVENT_READ, 'ehlo')
            elif key.data == 'ehlo' and b'\r\n250 ' in b'\r\n' + state[sock]:
                sel.unregister(sock)

def read_reply(sock):
    data = b''
    while b'\r\n' not in data or not any(l[3:4] == b' ' for l in data.split(b'\r\n') if len(l) > 3):
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError('closed')
        data += chunk
    return data

kept = []
if tls:
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    for i in range(n):
        s = socket.create_connection(('127.0.0.1', port))
        read_reply(s); s.sendall(b'EHLO idle.example\r\n'); read_reply(s)
        s.sendall(b'STARTTLS\r\n'); read_reply(s)
        t = ctx.wrap_socket(s)
        t.sendall(b'EHLO idle.example\r\n'); read_reply(t)
        kept.append(t)
start = time.time()
opened = n if tls else 0
while opened < n:
    s = socket.socket(); s.setblocking(False)
    s.connect_ex(('127.0.0.1', port))
    sel.register(s, selectors.EVENT_READ, 'banner')
    state[s] = b''
    opened += 1
    if opened % 500 == 0:
        # Let greetings arrive so the backlog never overflows.
        pump(0.5)
pump(60, until_done=True)
pending = len(sel.get_map())
t0 = time.time()
probe = socket.create_connection(('127.0.0.1', port))
banner = probe.recv(100)
wait_ms = (time.time() - t0) * 1000
print('idle sessions past %s: %d (%d still pending)' % ('STARTTLS and EHLO' if tls else 'EHLO', n - pending, pending))
print('mta-core RSS: %.1f MB; a new client got %r in %.1f ms' % (rss_mb(pid), banner[:3], wait_ms))
