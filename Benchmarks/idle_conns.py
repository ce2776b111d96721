#!/usr/bin/env python3
"""Open COUNT keep-alive connections, do one GET on each, then hold them idle.

usage: idle_conns.py --port P [--count 9000] [--hold 5] [--sources 4]

Prints (stdout, one line each, flushed):
  READY ok=N failed=N non200=N closed=N seconds=S [first_error=...]
      once every connection has either completed its GET or failed;
  DONE alive=N
      after holding for --hold seconds: connections the server has not closed.
Then closes everything and exits. The caller measures the server's RSS
between READY and DONE.

Connections are spread over --sources local addresses 127.0.0.2.. (bound with
IP_BIND_ADDRESS_NO_PORT, so the port is picked at connect time), which keeps
the 4-tuples far from ephemeral port exhaustion. --sources 0 uses 127.0.0.1.
Everything stays on loopback.
"""
import argparse
import asyncio
import resource
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            close = True
    if chunked:
        await reader.readuntil(b"0\r\n\r\n")
    elif length:
        await reader.readexactly(length)
    return status, close


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--count", type=int, default=9000)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=15.0)
    args = ap.parse_args()
    if not args.host.startswith("127."):
        sys.exit("idle_conns.py only talks to loopback addresses")
    raise_nofile()

    loop = asyncio.get_running_loop()
    req = f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nUser-Agent: switchyard-bench\r\n\r\n".encode()
    sem = asyncio.Semaphore(args.concurrency)
    conns = []
    stats = {"ok": 0, "failed": 0, "non200": 0, "closed": 0}
    first_error = []

    async def one(i):
        async with sem:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                if args.sources > 0:
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind((f"127.0.0.{2 + i % args.sources}", 0))
                await asyncio.wait_for(loop.sock_connect(s, (args.host, args.port)), args.timeout)
                reader, writer = await asyncio.open_connection(sock=s, limit=1 << 20)
                writer.write(req)
                status, close = await asyncio.wait_for(read_response(reader), args.timeout)
                if status != 200:
                    stats["non200"] += 1
                if close:
                    stats["closed"] += 1
                conns.append((reader, writer))
                stats["ok"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is counted
                stats["failed"] += 1
                if not first_error:
                    first_error.append(f"{type(e).__name__}: {e}".replace(" ", "_")[:120])
                s.close()

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    extra = f" first_error={first_error[0]}" if first_error else ""
    print(f"READY ok={stats['ok']} failed={stats['failed']} non200={stats['non200']} "
          f"closed={stats['closed']} seconds={time.monotonic() - t0:.1f}{extra}", flush=True)

    await asyncio.sleep(args.hold)
    alive = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())
    print(f"DONE alive={alive}", flush=True)
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
