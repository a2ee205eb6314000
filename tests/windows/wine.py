"""A throwaway, headless Wine prefix for the Windows end-to-end test (test_windows_e2e.py).

Every Wine program runs with the prefix's environment (WINEPREFIX, WINEDEBUG=-all,
WINEDLLOVERRIDES="mscoree,mshtml=", no DISPLAY, no *_proxy variable: Wine's WinHTTP falls back
to $http_proxy), stdin from /dev/null or a file, stdout and stderr into files (never a pipe:
services and wineserver inherit handles and would keep it open), and a timeout. `boot()` makes
the prefix and starts a persistent wineserver (without one, services die ~3 s after the last
Wine program exits); `destroy()` kills that wineserver (and with it every process of the
prefix), waits for it and removes the prefix.

Registry values are read back with `reg export` (UTF-16 .reg text, hex bytes) rather than by
parsing `reg query` output: the export holds the exact bytes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

WINE = "wine"
WINESERVER = "wineserver"
WINEBOOT = "wineboot"

# Variables that must not reach Wine: a display (no windows, no X errors) and every proxy.
_DROP = ("DISPLAY", "WAYLAND_DISPLAY")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _term_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


# Cleans up when the test process dies without its teardown (killed by a CTest timeout, say):
# SIGTERM through PR_SET_PDEATHSIG -> `wineserver -k` (every process of the prefix, the service
# included), `wineserver -w`, then removes the given folders. destroy() SIGKILLs it first.
_WATCHDOG = r"""
import os, shutil, signal, subprocess, sys, time
def bye(*_):
    for args in (["wineserver", "-k"], ["wineserver", "-w"]):
        try:
            subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        except Exception:
            pass
    for path in sys.argv[1:]:
        shutil.rmtree(path, ignore_errors=True)
    os._exit(0)
signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGHUP, bye)
if os.getppid() == 1:
    bye()
while True:
    time.sleep(3600)
"""


def wine_available() -> bool:
    return all(shutil.which(p) for p in (WINE, WINESERVER, WINEBOOT))


def wine_env(prefix: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k not in _DROP}
    env.update({"WINEPREFIX": str(prefix), "WINEDEBUG": "-all",
                "WINEDLLOVERRIDES": "mscoree,mshtml=", "LC_ALL": "C.UTF-8"})
    return env


@dataclass
class WineRun:
    """One finished (or timed-out) command: raw output bytes and its duration."""

    label: str
    argv: list[str]
    returncode: int | None
    # Not in repr(): pytest's assertion introspection prints reprs, and output is only ever
    # shown through describe(redact).
    stdout: bytes = field(repr=False)
    stderr: bytes = field(repr=False)
    seconds: float
    timed_out: bool = False

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def describe(self, redact=None) -> str:
        """For assertion messages: the command, exit status, duration, stdout and stderr.
        `redact(text) -> text` hides secrets (should a password ever leak into the output, the
        failure message must not repeat it)."""
        status = "timed out" if self.timed_out else f"exit {self.returncode}"
        text = (f"`{' '.join(self.argv)}`: {status} after {self.seconds:.2f}s\n"
                f"--- stdout ---\n{self.out}--- stderr ---\n{self.err}")
        return redact(text) if redact else text


@dataclass
class WinePrefix:
    """A Wine prefix at `path`; command output goes to `logs`."""

    path: Path
    logs: Path
    # Folders the watchdog removes besides the prefix when the test process dies untidily.
    orphan_cleanup: list[Path] = field(default_factory=list)
    runs: list[WineRun] = field(default_factory=list)
    booted: bool = False
    watchdog: subprocess.Popen | None = None

    def __post_init__(self):
        self.path = Path(self.path)
        self.logs = Path(self.logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = wine_env(self.path)

    @property
    def drive_c(self) -> Path:
        return self.path / "drive_c"

    def unix_path(self, windows_path: str) -> Path:
        """`C:\\ProgramData\\x` -> <prefix>/drive_c/ProgramData/x (drive C only)."""
        if not re.match(r"^[cC]:\\", windows_path):
            raise ValueError(f"not a C: path: {windows_path}")
        return self.drive_c.joinpath(*[p for p in windows_path[3:].split("\\") if p])

    # -- running programs ---------------------------------------------------------------------

    def run(self, argv: list, label: str, timeout: float = 60.0, stdin: Path | None = None,
            cwd: Path | None = None) -> WineRun:
        """Runs `argv` in the prefix's environment to completion (or until `timeout`, then it
        is killed: the process we started, by its pid)."""
        argv = [str(a) for a in argv]
        n = len(self.runs) + 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:60]
        out_path = self.logs / f"{n:02d}-{safe}.stdout"
        err_path = self.logs / f"{n:02d}-{safe}.stderr"
        t0 = time.monotonic()
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err, \
                open(stdin if stdin is not None else os.devnull, "rb") as inp:
            p = subprocess.Popen(argv, stdin=inp, stdout=out, stderr=err, env=self.env,
                                 cwd=str(cwd or self.logs), start_new_session=True)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                p.send_signal(signal.SIGKILL)
                rc = p.wait(timeout=10)
        seconds = time.monotonic() - t0
        result = WineRun(label, argv, None if timed_out else rc, out_path.read_bytes(),
                         err_path.read_bytes(), seconds, timed_out)
        self.runs.append(result)
        return result

    def wine(self, *args, label: str | None = None, **kw) -> WineRun:
        return self.run([WINE, *args], label or " ".join(str(a) for a in args[:3]), **kw)

    def boot(self, timeout: float = 180.0) -> list[WineRun]:
        """`wineboot --init; wineserver -w; wineserver -p`: a new prefix and a persistent
        wineserver. Raises with the output when a step fails."""
        # From here on destroy() (or the watchdog, should this process die first) stops this
        # prefix's wineserver, whatever happens next.
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.path), *map(str, self.orphan_cleanup)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=self.env, cwd="/", preexec_fn=_term_with_parent)
        self.booted = True
        steps = [self.run([WINEBOOT, "--init"], "wineboot --init", timeout=timeout),
                 self.run([WINESERVER, "-w"], "wineserver -w (after wineboot)", timeout=60),
                 self.run([WINESERVER, "-p"], "wineserver -p", timeout=30)]
        for r in steps:
            if r.returncode != 0:
                raise RuntimeError(f"Wine prefix setup failed: {r.describe()}")
        if not (self.path / "system.reg").is_file():
            raise RuntimeError(f"wineboot left no {self.path / 'system.reg'}")
        return steps

    def processes(self, needle: str | None = None) -> list[tuple[int, str]]:
        """(pid, command line) of the Linux processes of this prefix (WINEPREFIX in their
        environment), optionally only those whose command line holds `needle` (any case)."""
        marker = f"WINEPREFIX={self.path}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker not in environ.split(b"\0"):
                continue
            text = cmdline.replace(b"\0", b" ").decode("utf-8", "replace").strip()
            if needle is None or needle.lower() in text.lower():
                found.append((int(entry.name), text))
        return found

    def destroy(self) -> list[str]:
        """`wineserver -k; wineserver -w`, then removes the prefix. Returns problems (empty
        when clean); processes of this prefix still alive after that are SIGKILLed by pid."""
        problems = []
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.kill()  # SIGKILL: its SIGTERM handler would clean up concurrently
            self.watchdog.wait(timeout=10)
        if self.booted:
            for args, label in (([WINESERVER, "-k"], "wineserver -k"),
                                ([WINESERVER, "-w"], "wineserver -w (cleanup)")):
                try:
                    r = self.run(args, label, timeout=30)
                    if r.timed_out:
                        problems.append(r.describe())
                except OSError as e:
                    problems.append(f"{label}: {e}")
            left = self.processes()
            for pid, cmd in left:
                problems.append(f"process {pid} of the prefix still running after wineserver "
                                f"-k: {cmd}; killed")
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.path, ignore_errors=True)
        return problems

    # -- registry -----------------------------------------------------------------------------

    def reg_add_binary(self, key: str, value: str, data: bytes, view: int = 64) -> WineRun:
        return self.wine("reg", "add", key, "/v", value, "/t", "REG_BINARY", "/d", data.hex(),
                         "/f", f"/reg:{view}", label=f"reg add {value} /reg:{view}")

    def reg_key_exists(self, key: str, view: int = 64) -> tuple[bool, WineRun]:
        r = self.wine("reg", "query", key, f"/reg:{view}", label=f"reg query /reg:{view}")
        return r.returncode == 0, r

    def reg_read_binary(self, key: str, value: str, view: int = 64) -> tuple[bytes | None, WineRun]:
        """The bytes of a REG_BINARY value through `reg export`; None when the key or the value
        does not exist. Raises when the value exists with another type or the export fails
        for another reason."""
        folder = self.drive_c / "authshim-test"
        folder.mkdir(parents=True, exist_ok=True)
        n = len(self.runs) + 1
        target = folder / f"export-{n}.reg"
        r = self.wine("reg", "export", key, f"C:\\authshim-test\\{target.name}", "/y",
                      f"/reg:{view}", label=f"reg export /reg:{view}")
        if r.returncode != 0:
            if b"Unable to find" in r.stdout + r.stderr:
                return None, r
            raise RuntimeError(f"reg export failed: {r.describe()}")
        text = decode_reg_file(target.read_bytes())
        target.unlink()
        return parse_reg_value(text, value), r


def decode_reg_file(data: bytes) -> str:
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le")
    return data.decode("utf-8", "replace")


def parse_reg_value(text: str, value: str) -> bytes | None:
    """The bytes of `"value"=hex:..` in .reg text (continuation lines joined); None when the
    value is not there; ValueError when it is there with another type."""
    logical, buf = [], None
    for line in text.splitlines():
        buf = line.rstrip() if buf is None else buf + line.strip()
        if buf.endswith("\\"):
            buf = buf[:-1]
            continue
        logical.append(buf)
        buf = None
    if buf is not None:
        logical.append(buf)
    prefix = f'"{value}"='
    for line in logical:
        if not line.startswith(prefix):
            continue
        data = line[len(prefix):]
        if not data.startswith("hex:"):
            raise ValueError(f"{value} is not REG_BINARY: {data[:40]!r}")
        return bytes(int(x, 16) for x in data[4:].split(",") if x.strip())
    return None


# -- the WinHttpSettings value -------------------------------------------------------------------

CONNECTIONS_KEY = ("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\"
                   "Connections")
SETTINGS_VALUE = "WinHttpSettings"
STATE_KEY = "HKLM\\SOFTWARE\\authshim\\WinHttp"


def encode_winhttp_settings(proxy: str, bypass: str, version: int = 0x18, counter: int = 0,
                            flags: int = 3) -> bytes:
    p, b = proxy.encode("ascii"), bypass.encode("ascii")
    return (struct.pack("<IIII", version, counter, flags, len(p)) + p +
            struct.pack("<I", len(b)) + b)


@dataclass
class WinHttpSettings:
    version: int
    counter: int
    flags: int
    proxy: str
    bypass: str
    trailing: bytes


def decode_winhttp_settings(data: bytes) -> WinHttpSettings:
    """Strict decoder (ValueError on truncation)."""
    if len(data) < 16:
        raise ValueError(f"{len(data)} bytes: too short")
    version, counter, flags, plen = struct.unpack_from("<IIII", data, 0)
    pos = 16
    if pos + plen + 4 > len(data):
        raise ValueError("proxy length runs past the end")
    proxy = data[pos:pos + plen].decode("ascii")
    pos += plen
    (blen,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if pos + blen > len(data):
        raise ValueError("bypass length runs past the end")
    bypass = data[pos:pos + blen].decode("ascii")
    pos += blen
    return WinHttpSettings(version, counter, flags, proxy, bypass, data[pos:])


# -- step timing (the tests print each step's duration) -------------------------------------------


class Steps:
    """`with steps("name"):` prints the step's name and, when it ends, its duration."""

    def __init__(self):
        self.done: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        print(f"\n== {name}", flush=True)
        t0 = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - t0
            self.done.append((name, took))
            print(f"== {name}: {took:.2f}s", flush=True)

    def summary(self) -> str:
        lines = ["step durations:"]
        lines += [f"  {took:7.2f}s  {name}" for name, took in self.done]
        lines.append(f"  {sum(t for _, t in self.done):7.2f}s  total")
        return "\n".join(lines)
