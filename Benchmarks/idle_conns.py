#!/usr/bin/env python3
"""Open COUNT keep-alive connections, do one GET on each, then hold them idle.

usage: idle_conns.py --port P [--count 9000] [--hold 5] [--sources 4] [--tls]

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

--tls: each connection first does a TLS handshake (TLS 1.2 or 1.3, ALPN http/1.1, SNI
--server-name, no certificate verification, no session resumption: every handshake is a full
one), then the GET over TLS, then holds the TLS connection. TLS runs over memory BIOs on the
raw socket (ssl.SSLObject) rather than asyncio's SSL transport, which keeps a 256 KiB read
buffer per connection: thousands of connections stay small on the client side too.
"""
import argparse
import asyncio
import resource
import socket
import ssl
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


def client_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TLSStream:
    """A TLS client over a connected non-blocking socket, with the reader calls read_response uses."""

    def __init__(self, loop, sock, ctx, server_name):
        self.loop, self.sock = loop, sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)
        self.buf = bytearray()

    async def flush(self):
        data = self.outgoing.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def fill(self):
        data = await self.loop.sock_recv(self.sock, 65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.incoming.write(data)

    async def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.flush()
                await self.fill()
        await self.flush()

    async def write(self, data):
        self.tls.write(data)
        await self.flush()

    async def more(self):
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                await self.flush()  # a key update answer, should the server ask for one
                await self.fill()
                continue
            if not chunk:
                raise ConnectionError("TLS connection closed by the server")
            self.buf += chunk
            return

    async def readuntil(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            await self.more()

    async def readexactly(self, n):
        while len(self.buf) < n:
            await self.more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


    def closed_by_peer(self):
        """Without waiting: did the server close the connection (FIN, reset or close_notify)?"""
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return True
            if not data:
                return True
            self.incoming.write(data)
            try:
                while self.tls.read(65536):
                    pass
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLError):
                return True


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
    ap.add_argument("--tls", action="store_true", help="TLS to the server (no verification)")
    ap.add_argument("--server-name", default="localhost", help="SNI sent with --tls")
    args = ap.parse_args()
    if not args.host.startswith("127."):
        sys.exit("idle_conns.py only talks to loopback addresses")
    raise_nofile()

    loop = asyncio.get_running_loop()
    req = f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nUser-Agent: switchyard-bench\r\n\r\n".encode()
    tls_ctx = client_tls_context() if args.tls else None
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
                if tls_ctx:
                    stream = TLSStream(loop, s, tls_ctx, args.server_name)
                    await asyncio.wait_for(stream.handshake(), args.timeout)
                    await stream.write(req)
                    status, close = await asyncio.wait_for(read_response(stream), args.timeout)
                    held = (stream, s)
                else:
                    reader, writer = await asyncio.open_connection(sock=s, limit=1 << 20)
                    writer.write(req)
                    status, close = await asyncio.wait_for(read_response(reader), args.timeout)
                    held = (reader, writer)
                if status != 200:
                    stats["non200"] += 1
                if close:
                    stats["closed"] += 1
                conns.append(held)
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
    if tls_ctx:
        alive = sum(1 for stream, _ in conns if not stream.closed_by_peer())
    else:
        alive = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())
    print(f"DONE alive={alive}", flush=True)
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
