"""Clients: curl (the real HTTP client for well-formed traffic) and a raw socket client for
malformed requests and exact byte checks; on top of it, keep-alive GET series, bursts of
one-request connections and parallel clients for the load-style tests."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .util import LOOPBACK, clean_env, slow_factor

CURL = "/usr/bin/curl"


@dataclass
class CurlResult:
    returncode: int
    stdout: bytes
    stderr: str
    elapsed: float
    argv: list[str]

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def describe(self) -> str:
        return (f"curl exit {self.returncode} after {self.elapsed:.2f}s\nargv: {self.argv}\n"
                f"stderr: {self.stderr[-2000:]}\nstdout: {self.stdout[-2000:]!r}")


def curl(args: list, proxy_port: int | None = None, max_time: float = 30.0,
         timeout_slack: float = 15.0) -> CurlResult:
    """Runs curl with `-sS`, `--max-time`, and `--proxy http://127.0.0.1:PORT` when given."""
    argv = [CURL, "-sS", "--max-time", f"{max_time:g}"]
    if proxy_port is not None:
        argv += ["--proxy", f"http://{LOOPBACK}:{proxy_port}"]
    argv += [str(a) for a in args]
    t0 = time.monotonic()
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=clean_env(),
                        timeout=max_time + timeout_slack)
    return CurlResult(cp.returncode, cp.stdout, cp.stderr.decode("utf-8", "replace"),
                      time.monotonic() - t0, argv)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    head: bytes
    elapsed: float = 0.0
    interim: list = field(default_factory=list)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name: str):
        v = self.header_values(name)
        return v[0] if v else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def describe(self) -> str:
        return f"{self.head.decode('latin-1')}{self.body[:500]!r}"


class ConnectionClosed(Exception):
    pass


class RawConn:
    """A plain TCP connection to authshim. `source` binds the client side (e.g. 127.0.0.2)."""

    def __init__(self, port: int, host: str = LOOPBACK, source: str | None = None,
                 timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_tolerant(self, data: bytes) -> bool:
        """Sends, ignoring a reset by the peer (it may answer and close early). Returns False
        if the send was cut short."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, deadline: float) -> bool:
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no response in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 16)
        except ConnectionResetError:
            self.reset = True
            chunk = b""
        except socket.timeout as e:
            raise TimeoutError("no response in time") from e
        if not chunk:
            self.eof = True
            return False
        self.buf.extend(chunk)
        return True

    def _read_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionClosed(f"connection closed; pending {bytes(self.buf)[:200]!r}")
        i = self.buf.index(b"\r\n")
        line = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return line

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionClosed(f"body cut short: {len(self.buf)} of {n} bytes")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_response(self, method: str = "GET", timeout: float = 10.0) -> Response:
        """Reads one response (skipping 1xx), framing the body per RFC 9112 §6.3."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        interim = []
        while True:
            head_lines = []
            status_line = self._read_line(deadline)
            while True:
                line = self._read_line(deadline)
                if not line:
                    break
                head_lines.append(line)
            parts = status_line.decode("latin-1").split(" ", 2)
            version, status = parts[0], int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = []
            for line in head_lines:
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name.strip(), value.strip()))
            head = status_line + b"\r\n" + b"".join(l + b"\r\n" for l in head_lines) + b"\r\n"
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                continue
            break
        resp = Response(version, status, reason, headers, b"", head, interim=interim)
        te = ",".join(resp.header_values("Transfer-Encoding")).lower()
        cl = resp.header("Content-Length")
        if method == "HEAD" or status in (204, 304) or (method == "CONNECT" and 200 <= status < 300):
            body = b""
        elif "chunked" in te:
            parts = []
            while True:
                size = int(self._read_line(deadline).split(b";")[0], 16)
                if size == 0:
                    while self._read_line(deadline):
                        pass
                    break
                parts.append(self._read_exact(size, deadline))
                self._read_line(deadline)
            body = b"".join(parts)
        elif cl is not None:
            body = self._read_exact(int(cl), deadline)
        else:
            while self._fill(deadline):
                pass
            body = bytes(self.buf)
            self.buf.clear()
        resp.body = body
        resp.elapsed = time.monotonic() - t0
        return resp

    def closed_by_peer(self, timeout: float = 3.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` with no further bytes."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        return True


def raw_request(port: int, data: bytes, method: str = "GET", timeout: float = 10.0,
                source: str | None = None, check_close: bool = False) -> tuple[Response, bool | None]:
    """Sends `data` on a fresh connection, reads one response. Returns (response, whether the
    connection was closed by the peer within 3 s after the response, when `check_close`)."""
    with RawConn(port, source=source, timeout=timeout) as c:
        c.send_tolerant(data)
        resp = c.read_response(method, timeout=timeout)
        closed = c.closed_by_peer(3.0) if check_close else None
        return resp, closed


def get_keepalive(port: int, nginx, count: int, statuses: list | None = None) -> list:
    """`count` GETs of nginx's /small.bin over one client connection to `port`. Records 200
    for each right answer, (status, body start) for a wrong one and stops there; `statuses`
    (filled as it goes, so a caller keeps what came before an exception) is returned."""
    host = f"127.0.0.1:{nginx.http_port}"
    request = f"GET http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    expected = nginx.files["small.bin"].path.read_bytes()
    statuses = [] if statuses is None else statuses
    with RawConn(port, timeout=30 * slow_factor()) as c:
        for _ in range(count):
            c.send(request)
            resp = c.read_response(timeout=30 * slow_factor())
            ok = resp.status == 200 and resp.body == expected
            statuses.append(200 if ok else (resp.status, resp.text[:300]))
            if not ok:
                break
    return statuses


def burst(port: int, url: str, total: int = 100, parallel: int = 16) -> list:
    """`total` GETs of `url` through `port`, each on its own client connection, `parallel` at
    a time. Returns the responses (or the exception a request raised)."""
    host = url.split("/")[2]
    request = f"GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    def one(_):
        try:
            with RawConn(port, timeout=30 * slow_factor()) as c:
                c.send(request)
                return c.read_response(timeout=30 * slow_factor())
        except Exception as e:  # noqa: BLE001 - reported by the caller
            return e

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(total)))


def summarize(responses) -> dict:
    """{status or exception type name: count} of `burst` results."""
    out: dict = {}
    for r in responses:
        key = r.status if hasattr(r, "status") else type(r).__name__
        out[key] = out.get(key, 0) + 1
    return out


def run_parallel_clients(n: int, client, timeout: float) -> tuple[list[list], list[str], float]:
    """Runs `client(i, results)` for i in 0..n-1, each in its own thread, and joins each thread
    with `timeout` (the caller scales it). `client` appends what it gets to its `results` list,
    so what came before an exception is kept. Returns (the n result lists, one error line per
    client that raised, seconds taken)."""
    results: list[list] = [[] for _ in range(n)]
    errors: list[str] = []

    def run(i):
        try:
            client(i, results[i])
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(f"client {i} after {len(results[i])} responses: {e!r}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results, errors, time.monotonic() - t0


def clients_not_all_200(results: list[list], count: int) -> list:
    """(client, responses, last status) of each client in `results` that did not get `count`
    times 200."""
    return [(i, len(r), r[-1] if r else None) for i, r in enumerate(results)
            if len(r) != count or any(s != 200 for s in r)]


class ClientLoop:
    """Traffic in the background while a test changes something (a reload): `keepalive`
    threads each sending GETs of `url` one after another over one client connection (a new one
    when authshim or the upstream closes it), and `fresh` threads opening a new connection per
    request. Every outcome is kept with its time: the status, or the exception's text.
    `start()`, then `stop()` joins the threads and returns the outcomes."""

    def __init__(self, port: int, url: str, keepalive: int = 2, fresh: int = 1,
                 expected: bytes | None = None, pause: float = 0.0):
        self.port = port
        self.url = url
        host = url.split("/")[2]
        self.request = f"GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        self.expected = expected
        self.pause = pause
        self.outcomes: list[tuple[float, object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(True,), daemon=True)
                         for _ in range(keepalive)]
        self._threads += [threading.Thread(target=self._run, args=(False,), daemon=True)
                          for _ in range(fresh)]

    def _record(self, outcome):
        with self._lock:
            self.outcomes.append((time.monotonic(), outcome))

    def _run(self, keepalive: bool):
        timeout = 30 * slow_factor()
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = RawConn(self.port, timeout=timeout)
                conn.send(self.request)
                resp = conn.read_response(timeout=timeout)
                ok = self.expected is None or resp.body == self.expected
                self._record(resp.status if ok else f"{resp.status} with a wrong body")
                closes = (resp.header("Connection") or "").lower() == "close"
                if not keepalive or closes:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - recorded as the outcome
                self._record(f"{type(e).__name__}: {e}")
                if conn is not None:
                    conn.close()
                conn = None
            if self.pause:
                self._stop.wait(self.pause)
        if conn is not None:
            conn.close()

    def start(self) -> "ClientLoop":
        for t in self._threads:
            t.start()
        return self

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_for(self, n: int, timeout: float = 30.0):
        """Until `n` more outcomes than now were recorded."""
        target = self.count() + n
        deadline = time.monotonic() + timeout * slow_factor()
        while self.count() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the client loop made {self.count()} of {target} requests "
                                     f"within {timeout} s")
            time.sleep(0.02)

    def stop(self) -> list[tuple[float, object]]:
        self._stop.set()
        for t in self._threads:
            t.join(60 * slow_factor())
        with self._lock:
            return list(self.outcomes)

    @staticmethod
    def failures(outcomes, since: float = 0.0) -> list:
        return [(round(t - since, 3), o) for t, o in outcomes if t >= since and o != 200]
