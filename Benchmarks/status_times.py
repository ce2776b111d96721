#!/usr/bin/env python3
"""Times GET PATH on one keep-alive connection to 127.0.0.1:PORT, N times.

usage: status_times.py PORT PATH N

Prints one line: the median, the 99th percentile and the slowest, in ms, from the request
sent to the last byte of the answer read, and the answer's size. Loopback only.
"""
import socket
import sys
import time

port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = socket.create_connection(("127.0.0.1", port))
times = []
length = 0
for _ in range(n):
    start = time.perf_counter()
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += conn.recv(262144)
    times.append((time.perf_counter() - start) * 1000)
times.sort()
print(f"median {times[len(times) // 2]:.2f} ms, p99 {times[min(len(times) - 1, len(times) * 99 // 100)]:.2f} ms, "
      f"max {times[-1]:.2f} ms ({n} fetches, {length} bytes)")
