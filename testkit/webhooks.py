"""A webhook receiver for tests: a real HTTP server on loopback that verifies Standard Webhooks
signatures with its own implementation, written from the spec (https://www.standardwebhooks.com/,
"Verifying webhook authenticity"), never the product's code, so a bug there cannot hide itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 5 * 60  # the spec's suggested timestamp tolerance


def verify(secret: str, headers, body: bytes) -> bool:
    """Standard Webhooks verification, from the spec: HMAC-SHA256 over `id.timestamp.body` with the
    base64-decoded secret after `whsec_`, compared in constant time with each `v1,` signature."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    )
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


class Receiver:
    """A loopback HTTP server answering `fail_first` requests with 500, then 204 (or `answer`)."""

    def __init__(self, *, fail_first: int = 0):
        self.fail_first = fail_first
        self.secrets: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.answer: tuple[int, dict[str, str]] = (204, {})
        self.hold = threading.Event()  # set: answer at once; cleared: hang (a read timeout)
        self.hold.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "id": self.headers["webhook-id"],
                        "body": body,
                        "host": self.headers["Host"],
                        "valid": {secret: verify(secret, self.headers, body) for secret in receiver.secrets},
                    }
                )
                receiver.hold.wait(10)
                status, headers = (
                    (500, {}) if len(receiver.requests) <= receiver.fail_first else receiver.answer
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                return None  # quiet: tests read `requests`, not an access log on stderr

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/in?source=test"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def unique_ids(self) -> set[str]:
        return {request["id"] for request in self.requests}

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
