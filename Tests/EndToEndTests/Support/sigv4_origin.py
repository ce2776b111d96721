#!/usr/bin/env python3
"""A stand-in for a Lambda function URL with AuthType AWS_IAM: it recomputes the SigV4
signature of every request with botocore (the AWS SDK for Python's signer) from the known
secret, and answers 403 with the reason on any mismatch, 200 otherwise. Every answer carries
X-Origin-Requests (requests received so far) and, as JSON, the fields and body length it got;
GET /__verdicts (unsigned) answers how many requests it accepted and refused, GET /__bodies
each accepted request's body (as UTF-8 text), in the order they came.

usage: sigv4_origin.py ACCESS_KEY SECRET REGION SERVICE [SESSION_TOKEN]
(SESSION_TOKEN "*": any one token, signed, as renewed temporary credentials send)
Prints "listening on 127.0.0.1:PORT" on stderr once it accepts."""
import datetime
import hashlib
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ACCESS_KEY, SECRET, REGION, SERVICE = sys.argv[1:5]
TOKEN = sys.argv[5] if len(sys.argv) > 5 else None
COUNT = [0]
VERDICTS = {"ok": 0, "refused": 0}
BODIES = []
LOCK = threading.Lock()


def verify(method, target, fields, body):
    """The reason the request's signature is wrong, or None."""
    names = [n.lower() for n, _ in fields]
    if "transfer-encoding" in names:
        return "a signed body must come with its length"
    auth = [v for n, v in fields if n.lower() == "authorization"]
    if len(auth) != 1:
        return "expected one Authorization field, got %d" % len(auth)
    algorithm, _, rest = auth[0].partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return "algorithm " + algorithm
    parts = dict(p.strip().split("=", 1) for p in rest.split(","))
    credential = parts["Credential"].split("/")
    amz_date = [v for n, v in fields if n.lower() == "x-amz-date"]
    if len(amz_date) != 1:
        return "expected one X-Amz-Date"
    amz_date = amz_date[0]
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300:
        return "X-Amz-Date too far from now"
    if credential != [ACCESS_KEY, amz_date[:8], REGION, SERVICE, "aws4_request"]:
        return "credential scope " + parts["Credential"]
    content_sha = [v for n, v in fields if n.lower() == "x-amz-content-sha256"]
    if content_sha != [hashlib.sha256(body).hexdigest()]:
        return "X-Amz-Content-Sha256 %r does not match the body" % content_sha
    signed = parts["SignedHeaders"].split(";")
    for required in ["host", "x-amz-date", "x-amz-content-sha256"] + (["x-amz-security-token"] if TOKEN else []):
        if required not in signed:
            return required + " is not signed"
    tokens = [v for n, v in fields if n.lower() == "x-amz-security-token"]
    if TOKEN == "*" and len(tokens) != 1:
        return "session token %r: one expected" % tokens
    if TOKEN != "*" and tokens != ([TOKEN] if TOKEN else []):
        return "session token %r" % tokens
    host = [v for n, v in fields if n.lower() == "host"][0]
    request = AWSRequest(method=method, url="http://" + host + target, data=body)
    request.headers = HTTPHeaders()
    for name, value in fields:
        if name.lower() in signed:
            request.headers[name] = value
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET, tokens[0] if TOKEN == "*" else TOKEN), SERVICE, REGION)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != parts["Signature"]:
        return "signature mismatch; botocore's canonical request:\n" + canonical
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go in two writes: with Nagle on, each answer waited for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def handle_any(self):
        if self.path == "/__verdicts":  # the test asks, unsigned: what the origin answered so far
            with LOCK:
                self.answer(200, json.dumps(VERDICTS).encode(), COUNT[0])
            return
        if self.path == "/__bodies":
            with LOCK:
                self.answer(200, json.dumps(BODIES).encode(), COUNT[0])
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fields = list(self.headers.raw_items())
        try:
            reason = verify(self.command, self.path, fields, body)
        except Exception as e:  # a malformed Authorization is a refusal, not a crash
            reason = "cannot verify: %r" % e
        with LOCK:
            COUNT[0] += 1
            VERDICTS["refused" if reason else "ok"] += 1
            if not reason:
                BODIES.append(body.decode("utf-8", "replace"))
            count = COUNT[0]
        answer = json.dumps({"reason": reason, "fields": fields, "bodyLength": len(body)}).encode()
        self.answer(403 if reason else 200, answer, count)

    def answer(self, status, answer, count):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("X-Origin-Requests", str(count))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("listening on 127.0.0.1:%d" % server.server_address[1], file=sys.stderr, flush=True)
server.serve_forever()
