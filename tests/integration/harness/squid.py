"""Squid 5 as the upstream proxy, run in the foreground with `-N`: open to 127.0.0.0/8 by
default, or requiring proxy authentication (`auth=SquidAuth(...)`: Basic through
`basic_ncsa_auth`, Digest through `digest_file_auth`, or any helper command). `SquidWindow`
reads what one Squid logged during a test."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .proc import ManagedProcess, ServerFixture
from .util import (LOOPBACK, LogCursor, candidate_port, listening_ports, slow_factor, tail,
                   wait_until_quiet)

SQUID = "/usr/sbin/squid"

_CONF = """\
http_port {host}:{port}
visible_hostname squid-upstream.test
{auth}acl test_clients src 127.0.0.0/8
{access}http_access deny all
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


BASIC_NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"
DIGEST_FILE_AUTH = "/usr/lib/squid/digest_file_auth"
NTLM_FAKE_AUTH = "/usr/lib/squid/ntlm_fake_auth"


@dataclass
class SquidAuth:
    """One `auth_param` scheme (`basic`, `digest`, or `ntlm` / `negotiate`, which authshim does
    not answer: e.g. `ntlm` with NTLM_FAKE_AUTH). `program` is the helper command line (e.g.
    `[BASIC_NCSA_AUTH, htpasswd]`); `options` are further `auth_param SCHEME ...` lines without
    the prefix, e.g. `["credentialsttl 1 second", "casesensitive on"]` (Basic) or
    `["nonce_max_count 50"]` (Digest). Files the helper reads must be readable by user `proxy`
    (see `Squid.give_to_proxy`)."""

    scheme: str
    program: list
    realm: str = "authshim-test"
    children: str = "5 startup=1 idle=1"
    options: list = field(default_factory=list)

    def render(self) -> str:
        if self.scheme not in ("basic", "digest", "ntlm", "negotiate"):
            raise ValueError(f"unsupported Squid auth scheme {self.scheme!r}")
        p = f"auth_param {self.scheme}"
        lines = [f"{p} program {' '.join(str(a) for a in self.program)}",
                 f"{p} children {self.children}"]
        if self.scheme in ("basic", "digest"):  # NTLM and Negotiate have no realm
            lines.append(f"{p} realm {self.realm}")
        lines += [f"{p} {o}" for o in self.options]
        return "\n".join(lines) + "\n"


class Squid(ServerFixture):
    """One Squid instance in its own folder under the session tmp dir. `port` is where it
    listens; `access_log()` returns its access log text. With `auth` (one `SquidAuth` or a
    list, offered in that order) every request must carry valid proxy credentials
    (`acl authed proxy_auth REQUIRED`); without, every 127.0.0.0/8 client is allowed."""

    def __init__(self, workdir: Path, name: str = "squid", client_idle_pconn_timeout: str = "2 minutes",
                 extra: str = "", auth: "SquidAuth | list[SquidAuth] | None" = None):
        self.dir = Path(workdir) / name
        self.name = name
        self.idle = client_idle_pconn_timeout
        self.extra = extra
        if isinstance(auth, SquidAuth):
            auth = [auth]
        self.auth: list[SquidAuth] = list(auth or [])
        self.port = 0
        self.proc: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _auth_conf(self) -> tuple[str, str]:
        if not self.auth:
            return "", "http_access allow test_clients\n"
        text = "".join(a.render() for a in self.auth) + "acl authed proxy_auth REQUIRED\n"
        return text, "http_access allow test_clients authed\n"

    def prepare_dir(self) -> Path:
        """Creates the instance folder (owned by `proxy` when run as root) and returns it, so
        that helper files can be put there before `start()`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # Squid started as root switches to the `proxy` user: it must own its folder.
            pw = pwd.getpwnam("proxy")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)
        return self.dir

    @staticmethod
    def give_to_proxy(path: Path, mode: int = 0o600):
        """Makes `path` readable (and writable) by Squid's helpers only: owner `proxy` when run
        as root, then `mode`."""
        if os.geteuid() == 0:
            pw = pwd.getpwnam("proxy")
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, mode)

    def start(self, attempts: int = 5) -> "Squid":
        self.prepare_dir()
        auth_text, access_text = self._auth_conf()
        last_error = ""
        for _ in range(attempts):
            self.port = candidate_port()
            conf = self.dir / "squid.conf"
            conf.write_text(_CONF.format(host=LOOPBACK, port=self.port, dir=self.dir,
                                         idle=self.idle, extra=self.extra, auth=auth_text,
                                         access=access_text))
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


    def __enter__(self) -> "Squid":
        """`with Squid(...) as s:` starts it and stops it at the end, also on failure."""
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def count_407(self) -> int:
        """Requests Squid answered with 407 so far (`TCP_DENIED/407` lines of access.log)."""
        return self.access_log().count("TCP_DENIED/407")

    def cache_log_tail(self) -> str:
        return tail(self.dir / "cache.log")


# A second access log (`extra=CONN_LOG.format(dir=squid_dir)`) with the client port: distinct
# ports = the upstream connections authshim opened (read by SquidWindow).
CONN_LOG = """\
logformat shimconn %ts.%03tu %>a:%>p %Ss/%03>Hs %rm %ru %un
access_log stdio:{dir}/conns.log shimconn
"""


class SquidWindow:
    """What one Squid (started with CONN_LOG) logged after the window was opened: `entries()`
    are (client ip:port, code/status, method, url, user) from the `shimconn` log;
    `count_407()` counts `TCP_DENIED/407` in access.log (the native format)."""

    def __init__(self, squid: Squid):
        self.squid = squid
        self.access = LogCursor(squid.dir / "access.log")
        self.conns = LogCursor(squid.dir / "conns.log")

    def entries(self):
        return [(f[1], f[2], f[3], f[4], f[5]) for f in self.conns.lines() if len(f) >= 6]

    def count_407(self) -> int:
        return sum(1 for f in self.access.lines() if len(f) > 3 and f[3] == "TCP_DENIED/407")

    def count_407_with_user(self) -> int:
        """407s for requests that carried credentials (Squid logs their user name)."""
        return sum(1 for f in self.access.lines()
                   if len(f) > 7 and f[3] == "TCP_DENIED/407" and f[7] != "-")

    def connections(self) -> int:
        return len({e[0] for e in self.entries()})

    def settle(self, min_entries: int = 0, quiet: float = 0.4, timeout: float = 20.0):
        """Waits until at least `min_entries` entries are logged and nothing new arrives for
        `quiet` seconds (Squid logs a transaction when it ends)."""
        wait_until_quiet(lambda: len(self.conns.lines()), min_entries, quiet,
                         timeout * slow_factor(), what="Squid", unit="entries")


def squid_available() -> bool:
    return shutil.which(SQUID) is not None or Path(SQUID).exists()
