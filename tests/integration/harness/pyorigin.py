"""A small threaded origin for uploads, which nginx cannot check: POST/PUT bodies framed by
Content-Length or chunked are hashed and the answer is JSON
`{"method", "path", "bytes", "sha256", "chunked", "headers"}`. `GET /echo` answers the request
head it received the same way (to see what reached the origin through both proxies)."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .util import LOOPBACK


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "authshim-test-origin"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def _read_body(self, h) -> tuple[int, bool]:
        te = self.headers.get("Transfer-Encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                raise ValueError(f"unsupported Transfer-Encoding {te!r}")
            total = 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # trailers until the empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return total, True
                self._hash_exactly(size, h)
                total += size
                if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise ValueError("missing CRLF after chunk")
        length = int(self.headers.get("Content-Length", "0"))
        self._hash_exactly(length, h)
        return length, False

    def _hash_exactly(self, size: int, h) -> None:
        """Reads exactly `size` body bytes into the hash `h`; a short body is an error."""
        left = size
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                raise ValueError("body ended early")
            h.update(chunk)
            left -= len(chunk)

    def _answer(self, status: int, doc: dict):
        body = (json.dumps(doc, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _upload(self):
        h = hashlib.sha256()
        try:
            n, chunked = self._read_body(h)
        except ValueError as e:
            self.close_connection = True
            self._answer(400, {"error": str(e)})
            return
        self.server.record(self)
        self._answer(200, {"method": self.command, "path": self.path, "bytes": n,
                           "sha256": h.hexdigest(), "chunked": chunked,
                           "headers": [[k, v] for k, v in self.headers.items()]})

    do_POST = _upload
    do_PUT = _upload

    def do_GET(self):
        self.server.record(self)
        self._answer(200, {"method": self.command, "path": self.path,
                           "headers": [[k, v] for k, v in self.headers.items()]})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, handler):
        with self._lock:
            self.requests.append((handler.command, handler.path))


class PyOrigin:
    def __init__(self):
        self.server = _Server((LOOPBACK, 0), _Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="pyorigin",
                                       kwargs={"poll_interval": 0.1}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def start(self) -> "PyOrigin":
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
