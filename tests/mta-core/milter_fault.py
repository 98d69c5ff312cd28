#!/usr/bin/python3
# A milter that misbehaves on cue, speaking the wire protocol by hand (no
# libmilter, which would never send a broken packet), for the milter
# client's fault tests. What it does depends on the envelope sender:
#   hang@...     never answers SMFIC_MAIL
#   close@...    closes the connection at the first body chunk
#   garbage@...  answers SMFIC_RCPT with a packet longer than any limit
# Any other sender: continue at every step.
#   milter_fault.py PORT
import socket
import struct
import sys
import threading


def read_exact(conn, n):
    data = b''
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def send(conn, code, data=b''):
    conn.sendall(struct.pack('!I', len(data) + 1) + code + data)


def serve(conn):
    sender = b''
    try:
        while True:
            (length,) = struct.unpack('!I', read_exact(conn, 4))
            packet = read_exact(conn, length)
            code, data = packet[:1], packet[1:]
            if code == b'O':
                # Version 6, no actions, every step and every reply.
                send(conn, b'O', struct.pack('!III', 6, 0, 0))
            elif code in (b'D', b'A'):
                pass  # macros and abort get no reply
            elif code == b'Q':
                return
            elif code == b'M':
                sender = data.split(b'\0')[0]
                if sender.startswith(b'<hang@'):
                    threading.Event().wait()
                send(conn, b'c')
            elif code == b'R' and sender.startswith(b'<garbage@'):
                conn.sendall(b'\x7f\xff\xff\xffjunk')
            elif code == b'B' and sender.startswith(b'<close@'):
                return
            else:
                send(conn, b'c')
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(('127.0.0.1', int(sys.argv[1])))
listener.listen(64)
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
