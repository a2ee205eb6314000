"""In-process fake upstreams, only for behaviour no real server produces on demand.

- RecordingUpstream: accepts, records every byte, never answers (smuggling checks: 0 bytes;
  also the "silent upstream" for 504s).
- AnsweringUpstream: parses request heads (and bodies), records them, answers 200 with
  keep-alive. Modes for the pool tests: close the idle connection right after the first
  response, or read the next request and close without answering.
- ScriptedUpstream: reads requests like AnsweringUpstream and hands each to a script that
  answers as it likes: resets (`abort`), junk, a head dripped byte by byte, bodies cut short.
- FullAcceptQueue: a listening socket with backlog 0 that never accepts, pre-filled until new
  SYNs are dropped, so a connect to it hangs.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

from .util import LOOPBACK


def _readable(sock: socket.socket, timeout: float) -> bool:
    """select() for one socket, but with poll(): no limit on descriptor numbers (a test may
    hold thousands of sockets, e.g. the 10,000-connection flood)."""
    p = select.poll()
    p.register(sock, select.POLLIN)
    return bool(p.poll(timeout * 1000))


class _FakeServer:
    def __init__(self, name: str):
        self.name = name
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.connections = 0

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self):
        t = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self):
        while not self._stop.is_set():
            if not _readable(self.listener, 0.1):
                continue
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self.connections += 1
                index = self.connections - 1
                self._conns.append(conn)
            t = threading.Thread(target=self._serve_safe, args=(conn, index),
                                 name=f"{self.name}-conn{index}", daemon=True)
            t.start()
            with self._lock:
                self._threads.append(t)

    def _serve_safe(self, conn, index):
        try:
            self.serve(conn, index)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _recv(self, conn, n=65536, timeout=0.1):
        """recv that wakes up regularly to notice stop(); returns None on timeout."""
        while not self._stop.is_set():
            if _readable(conn, timeout):
                return conn.recv(n)
        return b""

    def serve(self, conn, index):  # pragma: no cover - overridden
        raise NotImplementedError

    def drop_connections(self) -> list[socket.socket]:
        """Shuts down every open client connection (a restart as the client sees it); returns
        them."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return conns

    def stop(self):
        self._stop.set()
        try:
            self.listener.close()
        except OSError:
            pass
        conns = self.drop_connections()
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout=5)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass


class RecordingUpstream(_FakeServer):
    """Accepts connections, records every byte received, never answers."""

    def __init__(self, name: str = "recording"):
        super().__init__(name)
        self.data: list[bytearray] = []

    def serve(self, conn, index):
        buf = bytearray()
        with self._lock:
            self.data.append(buf)
        while True:
            chunk = self._recv(conn)
            if not chunk:
                return
            with self._lock:
                buf.extend(chunk)

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(len(b) for b in self.data)

    def received(self) -> bytes:
        with self._lock:
            return b"".join(bytes(b) for b in self.data)

    def reset(self):
        with self._lock:
            for b in self.data:
                b.clear()


class Request:
    def __init__(self, head: bytes, body: bytes, connection: int, index_on_connection: int):
        self.head = head
        self.body = body
        self.connection = connection
        self.index_on_connection = index_on_connection
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        parts = self.request_line.split(" ")
        self.method = parts[0]
        self.target = parts[1] if len(parts) > 1 else ""
        self.version = parts[2] if len(parts) > 2 else ""
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.headers.append((name, value.strip()))

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name: str):
        values = self.header_values(name)
        return values[0] if values else None


class AnsweringUpstream(_FakeServer):
    """Records each request (head and body) and answers `200` with a small body and
    keep-alive. `mode`:
    - "keepalive": serve any number of requests per connection;
    - "close_idle": answer the first request of a connection, then close it `close_delay`
      seconds later while it is idle;
    - "close_on_next": answer the first request of a connection, then read the next request
      whole and close without answering it.
    """

    def __init__(self, name: str = "answering", mode: str = "keepalive", close_delay: float = 0.2,
                 body: bytes = b"fake-upstream-ok\n", framing: str = "content-length",
                 chunk_sizes: tuple = (1, 7, 4096, 65537)):
        super().__init__(name)
        assert mode in ("keepalive", "close_idle", "close_on_next")
        assert framing in ("content-length", "chunked", "eof")
        self.mode = mode
        self.close_delay = close_delay
        self.body = body
        # "chunked": the body in chunks of `chunk_sizes` (cycled; with a chunk extension and a
        # trailer), each chunk line and chunk sent in its own write. "eof": no Content-Length,
        # the body ends when the connection closes.
        self.framing = framing
        self.chunk_sizes = chunk_sizes
        self.requests: list[Request] = []
        self.unanswered: list[Request] = []

    def _read_request(self, conn, buf: bytearray):
        """Reads one request from conn (buf holds leftover bytes). Returns (head, body) or None
        on EOF."""
        while b"\r\n\r\n" not in buf:
            chunk = self._recv(conn)
            if not chunk:
                return None
            buf.extend(chunk)
        end = buf.index(b"\r\n\r\n") + 4
        head = bytes(buf[:end])
        del buf[:end]
        req = Request(head, b"", 0, 0)
        body = b""
        te = (req.header("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body_parts = []
            while True:
                while b"\r\n" not in buf:
                    chunk = self._recv(conn)
                    if not chunk:
                        return None
                    buf.extend(chunk)
                line_end = buf.index(b"\r\n")
                size = int(bytes(buf[:line_end]).split(b";")[0], 16)
                del buf[:line_end + 2]
                if size == 0:
                    while b"\r\n" not in buf:
                        chunk = self._recv(conn)
                        if not chunk:
                            return None
                        buf.extend(chunk)
                    # skip trailers up to the empty line
                    while not buf.startswith(b"\r\n"):
                        line_end = buf.index(b"\r\n")
                        del buf[:line_end + 2]
                        while b"\r\n" not in buf:
                            chunk = self._recv(conn)
                            if not chunk:
                                return None
                            buf.extend(chunk)
                    del buf[:2]
                    break
                while len(buf) < size + 2:
                    chunk = self._recv(conn)
                    if not chunk:
                        return None
                    buf.extend(chunk)
                body_parts.append(bytes(buf[:size]))
                del buf[:size + 2]
            body = b"".join(body_parts)
        elif req.header("Content-Length"):
            n = int(req.header("Content-Length"))
            while len(buf) < n:
                chunk = self._recv(conn)
                if not chunk:
                    return None
                buf.extend(chunk)
            body = bytes(buf[:n])
            del buf[:n]
        return head, body

    def _response(self, req: Request) -> bytes:
        body = b"" if req.method == "HEAD" else self.body
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: " + str(len(self.body)).encode() + b"\r\n"
                b"Connection: keep-alive\r\n\r\n" + body)

    def _send_response(self, conn, req: Request) -> bool:
        """Sends the answer to `req`; False when the connection must close after it."""
        if self.framing == "content-length":
            conn.sendall(self._response(req))
            return True
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        if self.framing == "eof":
            conn.sendall(head + b"Connection: close\r\n\r\n")
            if req.method != "HEAD":
                for i in range(0, len(self.body), 65536):
                    conn.sendall(self.body[i:i + 65536])
            return False
        conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        if req.method == "HEAD":
            return True
        pos, i = 0, 0
        while pos < len(self.body):
            size = self.chunk_sizes[i % len(self.chunk_sizes)]
            piece = self.body[pos:pos + size]
            conn.sendall(f"{len(piece):x};ext=1\r\n".encode())
            conn.sendall(piece + b"\r\n")
            pos += len(piece)
            i += 1
        conn.sendall(b"0\r\nX-Trailer: t\r\n\r\n")
        return True

    def serve(self, conn, index):
        buf = bytearray()
        n = 0
        while True:
            got = self._read_request(conn, buf)
            if got is None:
                return
            req = Request(got[0], got[1], index, n)
            if n >= 1 and self.mode == "close_on_next":
                with self._lock:
                    self.unanswered.append(req)
                return
            with self._lock:
                self.requests.append(req)
            keep = self._send_response(conn, req)
            n += 1
            if not keep:
                conn.shutdown(socket.SHUT_WR)
                return
            if self.mode == "close_idle":
                time.sleep(self.close_delay)
                return

    def recorded(self) -> list[Request]:
        with self._lock:
            return list(self.requests)


def abort(conn: socket.socket):
    """Makes the coming close() of `conn` send a TCP reset (SO_LINGER with a zero timeout)
    instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class ScriptedUpstream(AnsweringUpstream):
    """Reads each request whole (head and body, as AnsweringUpstream; recorded in `requests`)
    and calls `script(upstream, conn, req)`, which writes whatever it likes to `conn` and
    returns True to read another request on the connection, False to close it (with a reset
    when the script called `abort(conn)`). `req.connection` / `req.index_on_connection` tell
    which connection and which request on it. An exception in the script closes the
    connection (a reset when aborted)."""

    def __init__(self, script, name: str = "scripted"):
        super().__init__(name)
        self.script = script

    def serve(self, conn, index):
        buf = bytearray()
        n = 0
        while True:
            got = self._read_request(conn, buf)
            if got is None:
                return
            req = Request(got[0], got[1], index, n)
            with self._lock:
                self.requests.append(req)
            n += 1
            if not self.script(self, conn, req):
                return

    def stopped(self) -> bool:
        return self._stop.is_set()


class FullAcceptQueue:
    """A listening socket (backlog 0) that never accepts, filled with connections until the
    kernel drops new SYNs: a connect() to `port` then hangs until the caller's timeout."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers: list[socket.socket] = []

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> "FullAcceptQueue":
        for _ in range(64):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex((LOOPBACK, self.port))
            self.fillers.append(c)
            _, writable, _ = select.select([], [c], [], 0.3)
            if not writable:
                return self  # this SYN was dropped: the queue is full
        raise RuntimeError("accept queue never filled up")

    def connect_hangs(self, timeout: float = 0.5) -> bool:
        """Self-check: a fresh connect does not complete within `timeout`."""
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(timeout)
        try:
            c.connect((LOOPBACK, self.port))
            return False
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            c.close()

    def stop(self):
        for c in self.fillers:
            c.close()
        self.listener.close()
