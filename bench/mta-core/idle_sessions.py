#!/usr/bin/python3
"""Open N sessions to an SMTP server, each past EHLO, and keep them idle;
then print the server's resident memory and how long a new client waits
for its banner. Usage: idle_sessions.py PORT N SERVER_PID

Runs in one process with non-blocking sockets (selectors); raises its own
file limit to what it needs (hard limit permitting)."""
import resource, selectors, socket, sys, time

port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
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

start = time.time()
opened = 0
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
print('idle sessions past EHLO: %d (%d still pending)' % (n - pending, pending))
print('mta-core RSS: %.1f MB; a new client got %r in %.1f ms' % (rss_mb(pid), banner[:3], wait_ms))
