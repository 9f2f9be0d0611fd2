#!/usr/bin/env python3
"""Idle TCP flows for bench/netstack.sh.

  idle_flows.py serve PORT            accept on 127.0.0.1:PORT and hold every connection
  idle_flows.py connect HOST PORT N   open N connections, print "held N", then hold them until killed
"""
import resource
import socket
import sys
import time

resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
held = []
if sys.argv[1] == "serve":
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(sys.argv[2])))
    server.listen(4096)
    while True:
        connection, _ = server.accept()
        held.append(connection)
else:
    host, port, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    started = time.monotonic()
    for _ in range(count):
        held.append(socket.create_connection((host, port), timeout=30))
    print(f"held {len(held)} in {time.monotonic() - started:.1f} s", flush=True)
    while True:
        time.sleep(3600)
