#!/usr/bin/env python3
"""Print N free TCP ports on 127.0.0.1, one per line.

All N sockets are bound (port 0) at the same time, so the ports are distinct.
They are released before the script exits; the caller binds them right after.
"""
import socket
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
