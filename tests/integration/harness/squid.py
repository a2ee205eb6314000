"""Squid 5 as the upstream proxy (no authentication), run in the foreground with `-N`."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import time
from pathlib import Path

from .proc import ManagedProcess
from .util import LOOPBACK, candidate_port, listening_ports, tail

SQUID = "/usr/sbin/squid"

_CONF = """\
http_port {host}:{port}
visible_hostname squid-upstream.test
acl test_clients src 127.0.0.0/8
http_access allow test_clients
http_access deny all
cache deny all
cache_mem 8 MB
access_log stdio:{dir}/access.log
cache_log {dir}/cache.log
pid_filename {dir}/squid.pid
coredump_dir {dir}
logfile_rotate 0
shutdown_lifetime 0 seconds
pinger_enable off
netdb_filename none
client_idle_pconn_timeout {idle}
{extra}
"""


class Squid:
    """One Squid instance in its own folder under the session tmp dir. `port` is where it
    listens; `access_log()` returns its access log text."""

    def __init__(self, workdir: Path, name: str = "squid", client_idle_pconn_timeout: str = "2 minutes",
                 extra: str = ""):
        self.dir = Path(workdir) / name
        self.name = name
        self.idle = client_idle_pconn_timeout
        self.extra = extra
        self.port = 0
        self.proc: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self, attempts: int = 5) -> "Squid":
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # Squid started as root switches to the `proxy` user: it must own its folder.
            pw = pwd.getpwnam("proxy")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)
        last_error = ""
        for _ in range(attempts):
            self.port = candidate_port()
            conf = self.dir / "squid.conf"
            conf.write_text(_CONF.format(host=LOOPBACK, port=self.port, dir=self.dir,
                                         idle=self.idle, extra=self.extra))
            os.chmod(conf, 0o644)
            self.proc = ManagedProcess(self.name, [SQUID, "-N", "-f", conf], self.dir,
                                       watchdog=True).start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if not self.proc.running():
                    break
                if self.port in listening_ports(self.proc.pid):
                    return self
                time.sleep(0.05)
            last_error = f"squid exited {self.proc.poll()}; cache.log:\n{tail(self.dir / 'cache.log')}\n" \
                         f"stderr:\n{self.proc.stderr_tail()}"
            self.proc.stop(signal.SIGKILL, timeout=5)
        raise RuntimeError(f"Squid did not start: {last_error}")

    def stop(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, timeout=10)

    def access_log(self) -> str:
        try:
            return (self.dir / "access.log").read_text(errors="replace")
        except OSError:
            return ""

    def cache_log_tail(self) -> str:
        return tail(self.dir / "cache.log")


def squid_available() -> bool:
    return shutil.which(SQUID) is not None or Path(SQUID).exists()
