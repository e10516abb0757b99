#!/usr/bin/env python3
"""A tiny webhook receiver for trying wagate: verifies each request's Standard Webhooks
signature with the secret given as the first argument, prints the event and answers 200.

    python3 examples/webhooks/receiver.py whsec_... [port]
"""
import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = base64.b64decode(sys.argv[1].removeprefix("whsec_"))
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 9000


def verify(msg_id: str, timestamp: str, body: bytes, signatures: str) -> bool:
    if abs(time.time() - int(timestamp)) > 300:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sig.split(",", 1)[1], expected)
        for sig in signatures.split()
        if sig.startswith("v1,")
    )


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        ok = verify(
            self.headers["webhook-id"],
            self.headers["webhook-timestamp"],
            body,
            self.headers["webhook-signature"],
        )
        event = json.loads(body)
        print(f"{'verified' if ok else 'BAD SIGNATURE'}: {event['type']} {event['id']}", flush=True)
        print(json.dumps(event["data"], indent=2), flush=True)
        self.send_response(200 if ok else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
