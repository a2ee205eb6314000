"""Background processes started by the fixtures: output goes to files (never to a pipe that
could fill up), the child dies with the test process (PR_SET_PDEATHSIG), and stop() always
leaves nothing running."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from pathlib import Path

from .util import clean_env, tail

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

# Every process started through this module, so that a last-resort cleanup can find them.
_LIVE: list["ManagedProcess"] = []


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _term_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# A process that changes its credentials (Squid switching to user `proxy`) loses its
# PR_SET_PDEATHSIG. This helper keeps it: it dies with the test process and kills the target.
_WATCHDOG = """
import os, signal, sys, time
pid = int(sys.argv[1])
def bye(*_):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    os._exit(0)
signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGHUP, bye)
while True:
    time.sleep(0.5)
    try:
        os.kill(pid, 0)
    except OSError:
        os._exit(0)
"""


class ManagedProcess:
    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict | None = None,
                 watchdog: bool = False, preexec=None):
        """`preexec`: called in the child before exec (after PR_SET_PDEATHSIG), e.g. to set
        resource limits."""
        self.name = name
        self.preexec = preexec
        self.watchdog = watchdog
        self.watchdog_popen: subprocess.Popen | None = None
        self.argv = [str(a) for a in argv]
        self.workdir = Path(workdir)
        self.stdout_path = self.workdir / f"{name}.stdout"
        self.stderr_path = self.workdir / f"{name}.stderr"
        self.env = clean_env(env)
        self.popen: subprocess.Popen | None = None

    def start(self) -> "ManagedProcess":
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=self.env, cwd=self.workdir, preexec_fn=self._child_setup)
        _LIVE.append(self)
        if self.watchdog:
            self.watchdog_popen = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(self.popen.pid)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_term_with_parent)
        return self

    def _child_setup(self):
        _die_with_parent()
        if self.preexec is not None:
            self.preexec()

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def poll(self):
        return None if self.popen is None else self.popen.poll()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send_signal(self, sig: int):
        if self.running():
            self.popen.send_signal(sig)

    def wait(self, timeout: float):
        """Returns the exit status, or None if still running after `timeout`."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0):
        """Sends `sig`, waits up to `timeout`, then SIGKILLs. Returns (exit status, seconds
        taken, killed)."""
        if self.popen is None:
            return None, 0.0, False
        t0 = time.monotonic()
        killed = False
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                self.popen.kill()
                self.popen.wait(timeout=10)
        if self.watchdog_popen is not None and self.watchdog_popen.poll() is None:
            self.watchdog_popen.kill()  # SIGKILL: its SIGTERM handler would kill the target
            self.watchdog_popen.wait(timeout=10)
        if self in _LIVE:
            _LIVE.remove(self)
        return self.popen.returncode, time.monotonic() - t0, killed

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, limit: int = 4000) -> str:
        return tail(self.stderr_path, limit)


def kill_all_live():
    """Last-resort cleanup: kills every process this module started that is still running."""
    for p in list(_LIVE):
        try:
            p.stop(signal.SIGKILL, timeout=5)
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


class ServerFixture:
    """Shared by the Squid and nginx fixtures: `self.proc` (a ManagedProcess or None) and
    `self.dir` (the server's work folder, holding its `access.log`)."""

    proc: "ManagedProcess | None" = None
    dir: Path

    def stop(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, timeout=10)

    def access_log(self) -> str:
        try:
            return (self.dir / "access.log").read_text(errors="replace")
        except OSError:
            return ""
