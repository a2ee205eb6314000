"""Runs the authshim binary under test: writes its config, starts `authshim run --config`,
reads the listening ports from its log, and on stop checks a clean exit and sanitizer-clean
output."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from . import secrets
from .proc import ManagedProcess
from .util import LOOPBACK, clean_env, parse_duration, slow_factor

# The proxy's own line (` info listening on ...`), not the admin endpoint's
# (`admin endpoint listening on ...`); on 127.0.0.1, or on a 10.x address of a veth pair that a
# test created (test_hostile_clients.py), in the order of the config's `listen`.
LISTENING_RE = re.compile(r" info listening on (?:127\.0\.0\.1|10\.\d+\.\d+\.\d+):(\d+)")
ADMIN_RE = re.compile(r"admin endpoint listening on 127\.0\.0\.1:(\d+)")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "WARNING: ThreadSanitizer", "ERROR: UndefinedBehaviorSanitizer")

# Instances started in this pytest session, newest last (for failure reports).
STARTED: list["Authshim"] = []


def started_since(index: int) -> list["Authshim"]:
    """The authshim instances started after `STARTED` had `index` entries: a module takes
    `len(STARTED)` when it begins (the `module_authshims` fixture), so several modules in one
    pytest process never look at each other's instances."""
    return STARTED[index:]


def binary() -> Path:
    value = os.environ.get("AUTHSHIM_BIN")
    if not value:
        raise RuntimeError("AUTHSHIM_BIN is not set (path of the authshim binary under test)")
    path = Path(value)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(f"AUTHSHIM_BIN={value} is not an executable file")
    return path


def source_dir() -> Path:
    value = os.environ.get("AUTHSHIM_SOURCE_DIR")
    if value:
        return Path(value)
    return Path(__file__).resolve().parents[3]


# Every `run_cli` call of this session: argv, exit status, raw stdout / stderr (for the
# suite-wide secrets scan, see artifacts.py).
CLI_RUNS: list[dict] = []


def run_cli(args: list, timeout: float = 30.0, cwd: Path | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs `authshim ARGS` to completion (`env`: extra variables), output captured and
    returned as text (UTF-8, undecodable bytes replaced); the raw output is kept in CLI_RUNS."""
    argv = [str(binary())] + [str(a) for a in args]
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=clean_env(env),
                        timeout=timeout * slow_factor(), cwd=cwd)
    CLI_RUNS.append({"argv": argv, "returncode": cp.returncode, "stdout": cp.stdout,
                     "stderr": cp.stderr})
    cp.stdout = cp.stdout.decode("utf-8", "replace")
    cp.stderr = cp.stderr.decode("utf-8", "replace")
    return cp


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(upstream: str, upstream_name: str = "test-upstream", **sections) -> dict:
    """A config for one upstream `host:port`; keyword sections are deep-merged over the
    defaults (e.g. timeouts={"connect": "2s"}). A section value of None removes it."""
    cfg = {
        "listen": [f"{LOOPBACK}:0"],
        "upstreams": [{"name": upstream_name, "address": upstream}],
        "access": {"clients": ["127.0.0.0/8"], "connect_ports": [443]},
        "timeouts": {"connect": "5s", "client_header": "15s", "upstream_response": "10s",
                     "tunnel_idle": "5m", "shutdown": "10s"},
        "limits": {"max_connections": 4096, "max_header_bytes": 65536},
        "log": {"level": os.environ.get("AUTHSHIM_TEST_LOG_LEVEL", "info")},
        # A free port: the default 127.0.0.1:3129 would collide between instances.
        "admin": {"listen": f"{LOOPBACK}:0"},
    }
    for key, value in sections.items():
        if value is None:
            cfg.pop(key, None)
        elif isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = deep_merge(cfg[key], value)
        else:
            cfg[key] = copy.deepcopy(value)
    return cfg


class Authshim:
    """`env`: extra environment variables for the process (e.g. a password source
    `{"env": "VAR"}`); `*_proxy` variables are dropped as for every child."""

    def __init__(self, workdir: Path, config: dict, name: str = "authshim", env: dict | None = None,
                 preexec=None):
        """`preexec`: run in the child before exec (e.g. `resource.setrlimit`)."""
        self.preexec = preexec
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.config = config
        self.env = dict(env or {})
        self.config_path = self.dir / "authshim.json"
        self.proc: ManagedProcess | None = None
        self.ports: list[int] = []
        self.admin_port: int | None = None
        self.exit_status = None
        self.stopped = False

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def shutdown_timeout(self) -> float:
        return parse_duration(self.config.get("timeouts", {}).get("shutdown", "10s"))

    def log_file(self) -> Path | None:
        f = self.config.get("log", {}).get("file")
        if not f:
            return None
        p = Path(f)
        return p if p.is_absolute() else self.dir / p

    def log_text(self) -> str:
        """stderr plus the log file (when one is configured)."""
        text = self.proc.stderr_text() if self.proc else ""
        lf = self.log_file()
        if lf is not None:
            try:
                text += lf.read_text(errors="replace")
            except OSError:
                pass
        return text

    def log_tail(self, limit: int = 4000) -> str:
        return self.log_text()[-limit:]

    def start(self, timeout: float = 15.0) -> "Authshim":
        self.config_path.write_text(json.dumps(self.config, indent=2))
        secrets.REGISTRY.register_config(self.config, self.dir, self.env)
        self.proc = ManagedProcess(self.name, [binary(), "run", "--config", self.config_path],
                                   self.dir, env=self.env, preexec=self.preexec).start()
        STARTED.append(self)
        wanted = len(self.config.get("listen", [1]))
        deadline = time.monotonic() + timeout * slow_factor()
        while True:
            found = [int(p) for p in LISTENING_RE.findall(self.log_text())]
            if len(found) >= wanted:
                self.ports = found[:wanted]
                admin = ADMIN_RE.search(self.log_text())
                self.admin_port = int(admin.group(1)) if admin else None
                return self
            if not self.proc.running():
                raise RuntimeError(f"authshim exited with {self.proc.poll()} before listening; "
                                   f"log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.proc.stop(signal.SIGKILL, timeout=5)
                raise RuntimeError(f"authshim did not log 'listening on' within {timeout}s; "
                                   f"log:\n{self.log_tail()}")
            time.sleep(0.03)

    def rss_kb(self, field: str = "VmHWM") -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def sanitizer_findings(self) -> list[str]:
        text = self.log_text()
        return [m for m in SANITIZER_MARKERS if m in text]

    def stop(self, sig: int = signal.SIGTERM):
        """Stops authshim and returns (exit status, seconds taken, killed). Waits at most
        timeouts.shutdown + 2 s before SIGKILL."""
        if self.proc is None or self.stopped:
            return self.exit_status, 0.0, False
        budget = self.shutdown_timeout + 2.0
        result = self.proc.stop(sig, timeout=budget)
        self.stopped = True
        self.exit_status = result[0]
        return result

    def stop_and_check(self):
        """Teardown check: SIGTERM -> exit 0 within budget, no sanitizer report. Returns a list
        of problems (empty when clean)."""
        if self.proc is None:
            return []
        already = self.stopped
        status, took, killed = self.stop()
        problems = []
        if not already:
            if killed:
                problems.append(f"{self.name}: did not exit within timeouts.shutdown + 2s "
                                f"after SIGTERM (killed after {took:.1f}s)")
            elif status != 0:
                problems.append(f"{self.name}: exit status {status} after SIGTERM (expected 0)")
        findings = self.sanitizer_findings()
        if findings:
            problems.append(f"{self.name}: sanitizer report in log: {findings}")
        if problems:
            problems.append(f"--- {self.name} log tail ---\n{self.log_tail()}")
        return problems
