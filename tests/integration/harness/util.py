"""Small helpers shared by the fixtures: child environments, ports, waiting, durations, logs
read from a point on."""

from __future__ import annotations

import os
import random
import re
import socket
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def sanitizer_build() -> bool:
    """True when authshim was built with sanitizers (AUTHSHIM_SANITIZE non-empty)."""
    return bool(os.environ.get("AUTHSHIM_SANITIZE", "").strip())


def slow_factor() -> float:
    """Multiplier for time budgets: sanitizer builds run 2-3x slower."""
    return 3.0 if sanitizer_build() else 1.0


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment without any *_proxy / *_PROXY variable (curl, Squid and
    authshim must never pick up a proxy from the machine), nor NOTIFY_SOCKET (under a
    Type=notify runner every authshim would notify the real service manager; the tests that
    want it set their own)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.pop("ALL_PROXY", None)
    env.pop("all_proxy", None)
    env.pop("NOTIFY_SOCKET", None)
    env.setdefault("LC_ALL", "C")
    if extra:
        env.update(extra)
    return env


def parse_duration(text: str) -> float:
    """`250ms`, `15s`, `5m`, `1h` -> seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if not m:
        raise ValueError(f"bad duration {text!r}")
    n = int(m.group(1))
    return n * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]


def candidate_port() -> int:
    """A port that is free right now, for servers that cannot bind port 0 themselves (Squid,
    nginx). Taken from below the ephemeral range so it does not collide with port-0 binds;
    callers verify the server really owns it and retry with another port otherwise."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise RuntimeError("no free port found")


def reserved_closed_port() -> socket.socket:
    """A socket bound to an ephemeral port but not listening: connecting to that port is
    refused for as long as the socket lives, and nobody else can take the port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((LOOPBACK, 0))
    return s


def listening_ports(pid: int) -> set[int]:
    """TCP ports on which process `pid` holds a listening IPv4 socket (from /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "0A" and f[9] in inodes:
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value; returns it or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def wait_until_quiet(count, min_entries: int = 0, quiet: float = 0.4, timeout: float = 20.0,
                     what: str = "the log", unit: str = "entries"):
    """Polls `count()` (e.g. the lines a server logged so far) until it is at least
    `min_entries` and has not changed for `quiet` seconds (servers log a transaction when it
    ends); raises TimeoutError after `timeout` seconds (the caller scales it)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = count()
        if n != last:
            last, since = n, time.monotonic()
        elif n >= min_entries and time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} logged {last} {unit}, expected at least {min_entries}")


class LogCursor:
    """The part of a log file written after the cursor was made."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.offset = self.path.stat().st_size
        except OSError:
            self.offset = 0

    def text(self) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def lines(self) -> list[list[str]]:
        """The non-blank lines, split on white space."""
        return [l.split() for l in self.text().splitlines() if l.strip()]


def tail(path: Path, limit: int = 4000) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return f"<{path} unreadable>"
    return data[-limit:].decode("utf-8", "replace")
