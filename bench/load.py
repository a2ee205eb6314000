"""Load generators and clients: wrk through a Lua script (absolute-form targets, JSON summary),
an idle-machine wait, and small socket clients for cold requests, CONNECT + TLS, tunnel
throughput, keep-alive sequences and many idle connections. Python stdlib only."""

from __future__ import annotations

import json
import os
import selectors
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.util import LOOPBACK, clean_env

WRK = "/usr/bin/wrk"

# ---------------------------------------------------------------------------------------------
# Idle machine


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return sum(parts), idle


def cpu_busy(interval: float = 0.5) -> float:
    """Fraction of all CPUs busy over `interval` seconds."""
    t0, i0 = _cpu_times()
    time.sleep(interval)
    t1, i1 = _cpu_times()
    total = t1 - t0
    return 0.0 if total <= 0 else 1.0 - (i1 - i0) / total


class IdleWaiter:
    """Waits before each measured run until the machine is idle (busy < `threshold` over
    0.5 s), at most `max_wait` seconds. After three waits in a row that ran out, later waits
    get at most 3 s (a machine that stays busy would otherwise add minutes); every wait that
    ran out is counted and reported."""

    def __init__(self, threshold: float = 0.15, max_wait: float = 20.0):
        self.threshold = threshold
        self.max_wait = max_wait
        self.timeouts = 0
        self.waits = 0
        self.consecutive = 0
        self.busiest = 0.0

    def wait(self) -> dict:
        budget = self.max_wait if self.consecutive < 3 else min(3.0, self.max_wait)
        t0 = time.monotonic()
        self.waits += 1
        while True:
            busy = cpu_busy(0.5)
            if busy < self.threshold:
                self.consecutive = 0
                return {"idle": True, "busy": busy, "waited": time.monotonic() - t0}
            if time.monotonic() - t0 >= budget:
                self.timeouts += 1
                self.consecutive += 1
                self.busiest = max(self.busiest, busy)
                return {"idle": False, "busy": busy, "waited": time.monotonic() - t0}


# ---------------------------------------------------------------------------------------------
# wrk

_LUA = """\
wrk.method = "GET"
wrk.path = "{path}"
wrk.headers["Host"] = "{host}"
{auth}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH-JSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,\\"connect\\":%d," ..
    "\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d," ..
    "\\"p99_us\\":%d,\\"mean_us\\":%d,\\"max_us\\":%d}}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), math.floor(latency.mean),
    latency.max))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    bytes: int
    errors: dict
    p50_ms: float
    p99_ms: float
    expected_min_bytes: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def problems(self) -> list[str]:
        out = [f"{k}={v}" for k, v in self.errors.items() if v]
        if self.requests == 0:
            out.append("no request completed")
        elif self.bytes < self.requests * self.expected_min_bytes:
            out.append(f"only {self.bytes} bytes for {self.requests} responses "
                       f"(expected >= {self.expected_min_bytes} each)")
        return out

    def to_dict(self) -> dict:
        return {"requests": self.requests, "seconds": self.seconds, "bytes": self.bytes,
                "errors": self.errors, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "rps": self.rps, "mb_per_s": self.mb_per_s, "problems": self.problems()}


def write_wrk_script(path: Path, target_url: str, target_host: str, auth: str | None) -> Path:
    auth_line = f'wrk.headers["Proxy-Authorization"] = "{auth}"' if auth else ""
    path.write_text(_LUA.format(path=target_url, host=target_host, auth=auth_line))
    os.chmod(path, 0o600)  # may hold the Basic credentials
    return path


def run_wrk(script: Path, proxy_port: int, connections: int, threads: int, seconds: float,
            body_size: int, log_path: Path | None = None) -> WrkResult:
    """Runs wrk against the proxy at `proxy_port` (the URL's host:port; the request target
    comes from `script`). Raises when wrk fails or prints no summary."""
    seconds = max(1, round(seconds))  # wrk takes whole seconds only
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "--latency", "-s", str(script), f"http://{LOOPBACK}:{proxy_port}/"]
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                        errors="replace", env=clean_env(), timeout=seconds + 60)
    if log_path is not None:
        with open(log_path, "a") as f:
            f.write(f"$ {' '.join(argv)}\n{cp.stdout}{cp.stderr}\n")
    line = next((l for l in cp.stdout.splitlines() if l.startswith("BENCH-JSON ")), None)
    if cp.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {cp.returncode}):\n{cp.stdout[-2000:]}\n"
                           f"{cp.stderr[-2000:]}")
    d = json.loads(line[len("BENCH-JSON "):])
    errors = {k: d[k] for k in ("connect", "read", "write", "status", "timeout")}
    return WrkResult(d["requests"], d["duration_us"] / 1e6, d["bytes"], errors,
                     d["p50_us"] / 1000, d["p99_us"] / 1000, body_size)


# ---------------------------------------------------------------------------------------------
# A minimal HTTP/1.1 response reader over a blocking socket


class Conn:
    """A client connection to a proxy; `get()` sends one keep-alive GET (absolute form) and
    reads the whole response (Content-Length framing, which nginx's static files always
    have)."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def _read_head(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the response head")
            self.buf += chunk

    def read_response(self, body: bool = True) -> tuple[int, int]:
        """(status, body length); the body is read and discarded."""
        head = self._read_head()
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
            elif k.strip().lower() == b"transfer-encoding":
                raise ConnectionError("chunked response not supported by the bench client")
        if not body:
            return status, 0
        if length is None:
            raise ConnectionError(f"response {status} without Content-Length")
        take = min(length, len(self.buf))
        del self.buf[:take]
        left = length - take
        scratch = bytearray(1 << 18)
        view = memoryview(scratch)
        while left:
            n = self.sock.recv_into(view, min(left, len(scratch)))
            if not n:
                raise ConnectionError("connection closed in the body")
            left -= n
        return status, length

    def get(self, url: str, host: str, auth: str | None) -> tuple[int, int]:
        req = f"GET {url} HTTP/1.1\r\nHost: {host}\r\n"
        if auth:
            req += f"Proxy-Authorization: {auth}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        return self.read_response()

    def connect_tunnel(self, hostport: str, auth: str | None) -> int:
        req = f"CONNECT {hostport} HTTP/1.1\r\nHost: {hostport}\r\n"
        if auth:
            req += f"Proxy-Authorization: {auth}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        head = self._read_head()
        return int(head.split(b"\r\n")[0].split()[1])


def cold_requests(port: int, url: str, host: str, auth: str | None, n: int) -> list[float]:
    """`n` sequential requests, each on a new connection: seconds from connect() to the last
    body byte. Raises on a non-200."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c = Conn(port)
        try:
            status, _ = c.get(url, host, auth)
            t1 = time.perf_counter()
        finally:
            c.close()
        if status != 200:
            raise RuntimeError(f"cold request answered {status}")
        out.append(t1 - t0)
    return out


def connect_tls(port: int, target: str, auth: str | None, n: int) -> list[float]:
    """`n` sequential new connections: CONNECT `target` through the proxy, then a full TLS
    handshake (no session resumption); seconds from connect() to handshake complete."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c = Conn(port)
        try:
            status = c.connect_tunnel(target, auth)
            if status != 200:
                raise RuntimeError(f"CONNECT answered {status}")
            if c.buf:
                raise RuntimeError("bytes after the CONNECT response head")
            tls = ctx.wrap_socket(c.sock, server_hostname="localhost")
            t1 = time.perf_counter()
            tls.close()
        finally:
            c.close()
        out.append(t1 - t0)
    return out


def tunnel_throughput(port: int, http_port: int, path: str, auth: str | None,
                      min_seconds: float) -> tuple[float, int]:
    """Opens one CONNECT tunnel to nginx's plain-http port and downloads `path` over it,
    keep-alive, again and again until `min_seconds` have passed. Returns (MB/s, bytes)."""
    c = Conn(port, timeout=60)
    try:
        status = c.connect_tunnel(f"{LOOPBACK}:{http_port}", auth)
        if status != 200:
            raise RuntimeError(f"CONNECT answered {status}")
        total = 0
        t0 = time.perf_counter()
        while True:
            st, n = c.get(path, f"{LOOPBACK}:{http_port}", None)
            if st != 200:
                raise RuntimeError(f"GET through the tunnel answered {st}")
            total += n
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds:
                return total / elapsed / 1e6, total
    finally:
        c.close()


def keepalive_sequence(port: int, url: str, host: str, auth: str | None, n: int) -> int:
    """`n` sequential GETs on one connection; returns how many were answered 200."""
    c = Conn(port, timeout=600)
    ok = 0
    try:
        for _ in range(n):
            status, _ = c.get(url, host, auth)
            ok += status == 200
    finally:
        c.close()
    return ok


# ---------------------------------------------------------------------------------------------
# Many idle keep-alive connections


def open_idle_connections(port: int, url: str, host: str, n: int, batch: int = 250,
                          timeout: float = 60.0) -> tuple[list[socket.socket], int, float]:
    """Opens `n` connections to the proxy in batches of `batch` (non-blocking sockets, one
    selector), sends one keep-alive GET on each, reads its whole response and leaves the
    connection open. Returns (sockets, number answered 200, seconds taken)."""
    request = f"GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    socks: list[socket.socket] = []
    ok = 0
    t0 = time.monotonic()
    sel = selectors.DefaultSelector()
    try:
        while len(socks) < n:
            pending = {}
            for _ in range(min(batch, n - len(socks))):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex((LOOPBACK, port))
                socks.append(s)
                state = {"sent": False, "buf": bytearray()}
                pending[s] = state
                sel.register(s, selectors.EVENT_WRITE, state)
            deadline = time.monotonic() + timeout
            while pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} idle-test connections got no response "
                                       f"within {timeout}s ({len(socks)} opened)")
                for key, _ in sel.select(timeout=1.0):
                    s, st = key.fileobj, key.data
                    if not st["sent"]:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise RuntimeError(f"idle-test connect failed: {os.strerror(err)} "
                                               f"(after {len(socks)} connections)")
                        s.send(request)  # small: fits the empty send buffer
                        st["sent"] = True
                        sel.modify(s, selectors.EVENT_READ, st)
                        continue
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise RuntimeError("proxy closed an idle-test connection before "
                                           "answering")
                    st["buf"] += chunk
                    if _response_complete(st["buf"]):
                        ok += st["buf"].startswith(b"HTTP/1.1 200")
                        sel.unregister(s)
                        del pending[s]
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()
    return socks, ok, time.monotonic() - t0


def _response_complete(buf: bytearray) -> bool:
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return False
    for l in bytes(buf[:i]).split(b"\r\n")[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(buf) - (i + 4) >= int(v.strip())
    return False


def still_open(socks: list[socket.socket]) -> int:
    """How many of `socks` the peer has not closed."""
    n = 0
    for s in socks:
        try:
            data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            n += data != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n
