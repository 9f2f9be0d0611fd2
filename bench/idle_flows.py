#!/usr/bin/env python3
"""Idle TCP flows for bench/netstack.sh.

  idle_flows.py serve PORT            accept on 127.0.0.1:PORT and hold every connection
  idle_flows.py connect HOST PORT N   open up to N connections, print "held N", then hold them until killed
"""
import resource
import socket
import sys
import time

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
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
    error = ""
    try:
        for _ in range(count):
            held.append(socket.create_connection((host, port), timeout=30))
    except OSError as failure:
        error = f" (stopped: {failure})"
    print(f"held {len(held)} in {time.monotonic() - started:.1f} s{error}", flush=True)
    while True:
        time.sleep(3600)
