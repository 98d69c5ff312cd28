#!/usr/bin/python3
# A milter that misbehaves on cue, speaking the wire protocol by hand (no
# libmilter, which would never send a broken packet), for the milter
# client's fault tests. What it does depends on the envelope sender:
#   hang@...     never answers SMFIC_MAIL
#   close@...    closes the connection at the first body chunk
#   garbage@...  answers SMFIC_RCPT with a packet longer than any limit
#   badreply@... answers SMFIC_RCPT with a reply code whose enhanced code
#                is of another class (550 4.7.1)
#   multiline@... refuses SMFIC_RCPT with a two-line reply (smfi_setmlreply)
#   macros@...   refuses SMFIC_RCPT naming the macros it got for it (it asks
#                for "{rcpt_addr} {mail_addr} j" at RCPT in its negotiation)
#   slow@...     sends SMFIR_PROGRESS every second for 4 s, then continues
#   skip@...     answers the first body chunk with SMFIR_SKIP (and a later
#                chunk, which must not come, with garbage)
#   edits@...    sends 1001 header additions at the end of the message
#   bigbody@...  replaces the body with 120,000 bytes
# Any other sender: continue at every step. With "close-at-connect" after
# the port, every connection is closed before the negotiation.
#   milter_fault.py PORT [close-at-connect]
import socket
import struct
import sys
import threading
import time


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
    macros = {}
    skipped = False
    try:
        while True:
            (length,) = struct.unpack('!I', read_exact(conn, 4))
            packet = read_exact(conn, length)
            code, data = packet[:1], packet[1:]
            if code == b'O':
                # Version 6, every action, every step and every reply, SKIP,
                # and its own macro list for RCPT (SMFIM_ENVRCPT = 3).
                send(conn, b'O', struct.pack('!IIII', 6, 0x1ff, 0x400, 3) + b'{rcpt_addr} {mail_addr} j\0')
            elif code == b'D':
                fields = data[1:].split(b'\0')[:-1]
                macros[data[:1]] = dict(zip(fields[0::2], fields[1::2]))
            elif code == b'A':
                pass  # no reply
            elif code == b'Q':
                return
            elif code == b'M':
                sender = data.split(b'\0')[0]
                if sender.startswith(b'<hang@'):
                    threading.Event().wait()
                if sender.startswith(b'<slow@'):
                    for _ in range(4):
                        send(conn, b'p')
                        time.sleep(1)
                send(conn, b'c')
            elif code == b'R' and sender.startswith(b'<garbage@'):
                conn.sendall(b'\x7f\xff\xff\xffjunk')
            elif code == b'R' and sender.startswith(b'<badreply@'):
                send(conn, b'y', b'550 4.7.1 class mismatch\0')
            elif code == b'R' and sender.startswith(b'<multiline@'):
                send(conn, b'y', b'550-5.7.1 first line\r\n550 5.7.1 second line\0')
            elif code == b'R' and sender.startswith(b'<macros@'):
                names = b','.join(sorted(macros.get(b'R', {}).keys()))
                send(conn, b'y', b'550 5.7.1 macros ' + names + b'\0')
            elif code == b'B' and sender.startswith(b'<close@'):
                return
            elif code == b'B' and sender.startswith(b'<skip@'):
                if skipped:
                    conn.sendall(b'\x7f\xff\xff\xffjunk')
                else:
                    skipped = True
                    send(conn, b's')
            elif code == b'E' and sender.startswith(b'<edits@'):
                for _ in range(1001):
                    send(conn, b'h', b'X-Many\0v\0')
                send(conn, b'c')
            elif code == b'E' and sender.startswith(b'<bigbody@'):
                send(conn, b'b', b'x' * 60000)
                send(conn, b'b', b'x' * 60000)
                send(conn, b'c')
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
close_at_connect = len(sys.argv) > 2 and sys.argv[2] == 'close-at-connect'
while True:
    c, _ = listener.accept()
    if close_at_connect:
        c.close()
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
