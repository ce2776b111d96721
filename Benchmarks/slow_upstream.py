#!/usr/bin/env python3
"""A tiny HTTP/1.1 keep-alive server that answers every request after a delay.

usage: slow_upstream.py --listen 127.0.0.1:PORT [--delay-ms 200] [--count-file F]

Answers `200 ok` with Content-Length after --delay-ms; keeps the connection
open unless the request says `Connection: close`. Request bodies are read by
Content-Length (chunked request bodies are not supported: the benchmarks only
send GETs). The number of requests received so far is written to --count-file
twice a second and on exit (SIGTERM/SIGINT), so a benchmark can prove that
shadow copies arrived. Listens on loopback only.
"""
import argparse
import asyncio
import os
import signal

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nslow\n"
RESPONSE_CLOSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                  b"Connection: close\r\n\r\nslow\n")


class State:
    requests = 0
    connections = 0


class SlowHTTP(asyncio.Protocol):
    def __init__(self, delay):
        self.delay = delay
        self.buf = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        State.connections += 1

    def data_received(self, data):
        self.buf += data
        loop = asyncio.get_running_loop()
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.transport.close()
                return
            head = self.buf[:end].lower()
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            State.requests += 1
            close = b"\r\nconnection: close" in head
            # call_later with equal delays fires in scheduling order, so
            # pipelined requests are answered in order.
            loop.call_later(self.delay, self.respond, close)

    def respond(self, close):
        if self.transport.is_closing():
            return
        self.transport.write(RESPONSE_CLOSE if close else RESPONSE)
        if close:
            self.transport.close()


def write_count(path):
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(f"{State.requests}\n")
        os.replace(path + ".tmp", path)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:8099")
    ap.add_argument("--delay-ms", type=float, default=200.0)
    ap.add_argument("--count-file")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    if not host.startswith("127."):
        raise SystemExit("slow_upstream.py listens on loopback only")

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(lambda: SlowHTTP(args.delay_ms / 1000.0),
                                      host, int(port), backlog=4096, reuse_address=True)
    write_count(args.count_file)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
        write_count(args.count_file)
    server.close()
    write_count(args.count_file)


if __name__ == "__main__":
    asyncio.run(main())
