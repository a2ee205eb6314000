"""Apache httpd 2.4 as a forward proxy that demands Digest proxy authentication
(mod_auth_digest + mod_proxy_http + mod_proxy_connect), run in the foreground
(`apache2 -f CONF -DFOREGROUND`) on a minimal config of our own in the session tmp dir: only the
modules it needs, no /etc/apache2 file is read.

As root, Apache's master stays root (it binds, opens the logs, writes the pid file) and its
children run as `www-data`: the AuthUserFile (re-read by the children on every check) is
therefore `root:www-data` mode 0640, and the folder is 0755.

Logs: `access.log` in the `shim` format below (one line per request: client ip:port, final
status, method, user, keep-alive count of the connection, scheme of Proxy-Authorization,
request line), `error.log` (mod_auth_digest's `AH01794: user X: password mismatch`)."""

from __future__ import annotations

import grp
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .proc import ManagedProcess, ServerFixture, _term_with_parent
from .util import LOOPBACK, candidate_port, listening_ports, tail

APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"

# Compiled into Debian's apache2: core, mod_so, mod_watchdog, http_core, mod_log_config,
# mod_logio, mod_version, mod_unixd. Everything else is loaded here.
_MODULES = [
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authn_file_module", "mod_authn_file.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("auth_digest_module", "mod_auth_digest.so"),
    ("setenvif_module", "mod_setenvif.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
    ("proxy_connect_module", "mod_proxy_connect.so"),
]

# Fields of the `shim` access log, split on whitespace (the request line is last):
#   0 client ip:port  1 status  2 method  3 user (%u: set by mod_auth_digest from the
#   credentials even when they fail; "-" without)  4 %k (requests served before on this
#   connection)  5 Proxy-Authorization scheme ("-" without)  6.. request line
# Instances started in this pytest session, newest last (for failure reports).
STARTED: list["Apache"] = []

_CONF = """\
ServerRoot "{dir}"
ServerName apache-upstream.test
Listen {host}:{port}
PidFile "{dir}/apache.pid"
DefaultRuntimeDir "{dir}/run"
Mutex file:{dir}/run default
{user}
{modules}
ErrorLog "{dir}/error.log"
LogLevel warn
LogFormat "%a:%{{remote}}p %>s %m %u %k %{{shim_pa}}e \\"%r\\"" shim
CustomLog "{dir}/access.log" shim
SetEnvIf Proxy-Authorization "^([A-Za-z]+)" shim_pa=$1

StartServers 1
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
Timeout 30
KeepAlive On
MaxKeepAliveRequests {max_keepalive}
KeepAliveTimeout 15

DocumentRoot "{dir}/www"
<Directory />
    AllowOverride None
    Require all denied
</Directory>

ProxyRequests On
ProxyVia Off
ProxyTimeout 30
AllowCONNECT {connect_ports}
<Proxy "*">
    AuthType Digest
    AuthName "{realm}"
    AuthDigestProvider file
    AuthUserFile "{dir}/htdigest"
    Require valid-user
</Proxy>
"""


# Apache's children do not die with their master (checked: after a SIGKILL to the master a child
# was still running 10 s later, holding the listening socket), and the master's
# PR_SET_PDEATHSIG is not inherited by them. This watchdog dies with the test process
# (PR_SET_PDEATHSIG: SIGTERM) and then, or as soon as the master is gone, kills every process
# whose command line holds this instance's config path. argv: master pid, config path.
_WATCHDOG = r"""
import os, signal, sys, time
master, conf = int(sys.argv[1]), os.fsencode(sys.argv[2])
def instance():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"apache2") and conf in argv:
                pids.append(int(d))
    return pids
def kill_all(*_):
    for pid in instance():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)
signal.signal(signal.SIGTERM, kill_all)
signal.signal(signal.SIGHUP, kill_all)
while True:
    time.sleep(0.5)
    try:
        os.kill(master, 0)
    except OSError:
        kill_all()
"""


def htdigest_line(user: str, realm: str, password: str) -> str:
    """What `htdigest` writes: `user:realm:md5(user:realm:password)`."""
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode("utf-8")).hexdigest()
    return f"{user}:{realm}:{ha1}\n"


class Apache(ServerFixture):
    """One Apache forward proxy in `workdir/name`. `users` {name: password} go into the
    AuthUserFile (htdigest format, computed here: no password on a command line).
    `connect_ports`: AllowCONNECT. `address` is `127.0.0.1:port`."""

    def __init__(self, workdir: Path, users: dict, name: str = "apache", realm: str = "realm",
                 connect_ports=(443,), max_keepalive: int = 100):
        self.dir = Path(workdir) / name
        self.name = name
        self.users = dict(users)
        self.realm = realm
        self.connect_ports = [int(p) for p in connect_ports]
        self.max_keepalive = max_keepalive
        self.port = 0
        self.conf = self.dir / "apache.conf"
        self.proc: ManagedProcess | None = None
        self.watchdog: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _write_files(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        for sub in ("run", "www"):
            (self.dir / sub).mkdir(exist_ok=True)
            os.chmod(self.dir / sub, 0o755)
        pwfile = self.dir / "htdigest"
        pwfile.write_text("".join(htdigest_line(u, self.realm, p) for u, p in self.users.items()),
                          encoding="utf-8")
        if os.geteuid() == 0:
            os.chown(pwfile, 0, grp.getgrnam("www-data").gr_gid)
        os.chmod(pwfile, 0o640)

    def _render(self) -> str:
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        modules = "\n".join(f"LoadModule {m} {MODULES}/{f}" for m, f in _MODULES)
        return _CONF.format(dir=self.dir, host=LOOPBACK, port=self.port, user=user,
                            modules=modules, max_keepalive=self.max_keepalive,
                            connect_ports=" ".join(str(p) for p in self.connect_ports),
                            realm=self.realm)

    def start(self, attempts: int = 5) -> "Apache":
        self._write_files()
        last_error = ""
        for _ in range(attempts):
            self.port = candidate_port()
            self.conf.write_text(self._render())
            os.chmod(self.conf, 0o644)
            self.proc = ManagedProcess(self.name, [APACHE, "-f", self.conf, "-DFOREGROUND"],
                                       self.dir).start()
            self.watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(self.proc.pid), str(self.conf)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_term_with_parent)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if not self.proc.running():
                    break
                if self.port in listening_ports(self.proc.pid):
                    STARTED.append(self)
                    return self
                time.sleep(0.05)
            last_error = (f"apache2 exited {self.proc.poll()}; error.log:\n"
                          f"{tail(self.dir / 'error.log')}\nstderr:\n{self.proc.stderr_tail()}")
            self.stop()
        raise RuntimeError(f"Apache did not start: {last_error}")

    def _processes(self) -> list[int]:
        """PIDs of every process of this instance (the children keep the master's argv, so
        the config path in the command line finds them all)."""
        me = str(self.conf).encode()
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"apache2") and me in argv:
                pids.append(int(d.name))
        return pids

    def stop(self):
        """SIGTERM to the master (it stops its children and exits), SIGKILL after 10 s; then
        SIGKILL to any child left over. Raises if a process of this instance survives."""
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM, timeout=10)
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.kill()  # SIGKILL: its SIGTERM handler would kill the instance
            self.watchdog.wait(timeout=10)
        for sig in (None, signal.SIGKILL):
            if sig is not None:
                for pid in self._processes():
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if not self._processes():
                    return
                time.sleep(0.05)
        raise RuntimeError(f"apache2 processes left running: {self._processes()}")

    # --- logs ---------------------------------------------------------------------------

    def error_log(self) -> str:
        try:
            return (self.dir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def error_log_tail(self, limit: int = 3000) -> str:
        return tail(self.dir / "error.log", limit)

    def access_log_tail(self, limit: int = 3000) -> str:
        return tail(self.dir / "access.log", limit)


def apache_available() -> bool:
    return Path(APACHE).exists() and Path(MODULES, "mod_auth_digest.so").exists()
