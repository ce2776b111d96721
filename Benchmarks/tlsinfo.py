#!/usr/bin/env python3
"""TLS facts for tls.sh: what a target negotiates, and how many handshakes it resumed.

usage:
  tlsinfo.py probe PORT [--http10]
      one TLS connection to 127.0.0.1:PORT (no verification, SNI localhost, ALPN http/1.1),
      one GET /, then prints one line:
        version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 alpn=http/1.1 status=200
      --http10 sends "GET / HTTP/1.0" without Host, as `openssl s_time -www /` does.
  tlsinfo.py haproxy SOCKET
      HAProxy's frontend TLS counters from its stats socket (`show stat`: ssl_sess counts
      full handshakes, ssl_reused_sess resumed ones), printed as: full=N resumed=N
  tlsinfo.py metrics PORT
      Switchyard's client handshake counters from /metrics on 127.0.0.1:PORT
      (switchyard_tls_handshakes_total, switchyard_tls_resumed_total): full=N resumed=N
On failure prints `error=...` (one line) and exits 1.
"""
import socket
import ssl
import sys


def probe(port, http10):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        if http10:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        else:
            s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = line.split(" ")
        status = parts[1] if len(parts) > 1 else "none"
        print(f"version={s.version()} cipher={s.cipher()[0]} alpn={s.selected_alpn_protocol()} status={status}")


def haproxy(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    lines = data.decode(errors="replace").splitlines()
    header = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("svname") == "FRONTEND" and row.get("ssl_sess", "") != "":
            print(f"full={int(row['ssl_sess'])} resumed={int(row['ssl_reused_sess'])}")
            return
    raise RuntimeError("no frontend with ssl_sess in 'show stat'")


def metrics(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    values = {}
    for line in data.decode(errors="replace").splitlines():
        name, _, value = line.partition(" ")
        if name in ("switchyard_tls_handshakes_total", "switchyard_tls_resumed_total"):
            values[name] = int(float(value))
    total, resumed = values["switchyard_tls_handshakes_total"], values["switchyard_tls_resumed_total"]
    print(f"full={total - resumed} resumed={resumed}")


def main():
    try:
        cmd = sys.argv[1]
        if cmd == "probe":
            probe(int(sys.argv[2]), "--http10" in sys.argv[3:])
        elif cmd == "haproxy":
            haproxy(sys.argv[2])
        elif cmd == "metrics":
            metrics(int(sys.argv[2]))
        else:
            raise ValueError(f"unknown command {cmd}")
    except Exception as e:  # noqa: BLE001 - one line for the report
        print(f"error={type(e).__name__}:{str(e).replace(' ', '_')[:150]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
