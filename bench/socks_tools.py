#!/usr/bin/env python3
"""Helpers for bench/socks.sh: a byte sink, a tiny reply server, a SOCKS5 bulk pusher and a
short-connection driver. Kept out of the proxies under test: each runs in its own process."""
import socket, struct, sys, time, threading

def socks5_connect(proxy_port, host, port):
    s = socket.create_connection(("127.0.0.1", proxy_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack("!H", port))
    reply = b""
    while len(reply) < 10:
        chunk = s.recv(10 - len(reply))
        if not chunk: raise SystemExit("proxy closed")
        reply += chunk
    if reply[1] != 0: raise SystemExit("socks reply %d" % reply[1])
    return s

def sink(port):
    """Counts bytes per connection until EOF, then answers the count."""
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port)); l.listen(128)
    def serve(c):
        buf = bytearray(1 << 20); total = 0
        while True:
            n = c.recv_into(buf)
            if n == 0: break
            total += n
        c.sendall(str(total).encode()); c.close()
    while True:
        c, _ = l.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

def reply_server(port):
    """Answers every connection with 64 bytes and closes it."""
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port)); l.listen(1024)
    payload = b"x" * 64
    while True:
        c, _ = l.accept()
        c.sendall(payload); c.close()

def push(proxy_port, sink_port, total):
    s = socks5_connect(proxy_port, "127.0.0.1", sink_port)
    block = b"\xa5" * (1 << 20)
    start = time.monotonic(); sent = 0
    while sent < total:
        s.sendall(block); sent += len(block)
    s.shutdown(socket.SHUT_WR)
    answer = s.recv(64)
    elapsed = time.monotonic() - start
    assert int(answer) == sent, (answer, sent)
    print("%.3f" % (sent * 8 / elapsed / 1e9))

def short(proxy_port, server_port, count):
    start = time.monotonic()
    for _ in range(count):
        s = socks5_connect(proxy_port, "127.0.0.1", server_port)
        got = b""
        while len(got) < 64:
            chunk = s.recv(64)
            if not chunk: break
            got += chunk
        assert len(got) == 64
        s.close()
    print("%.3f" % (time.monotonic() - start))

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "sink": sink(int(sys.argv[2]))
    elif mode == "reply": reply_server(int(sys.argv[2]))
    elif mode == "push": push(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "short": short(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
