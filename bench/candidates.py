"""The servers of the benchmark: nginx (origin), two upstream Squids (Basic and Digest), and the
candidates in front of Squid-Basic: authshim, a child Squid with `cache_peer ... login=` and
tinyproxy with `Upstream http user:pass@...`. All run on loopback, started through the
integration-test harness (tests/integration/harness), and stop with the harness's last-resort
cleanup (`proc.kill_all_live`) whatever happens.

Nothing here prints the benchmark password: it lives in files (mode 0600 where the server
allows) and in the child Squid's / tinyproxy's config (which they need to read it from)."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import proc as hproc
from harness.authshim import Authshim, make_config
from harness.nginx import Nginx
from harness.proc import ManagedProcess
from harness.secrets import write_secret
from harness.squid import _CONF as SQUID_CONF
from harness.squid import BASIC_NCSA_AUTH, DIGEST_FILE_AUTH, SQUID, Squid, SquidAuth
from harness.squid_auth import write_digest_file, write_htpasswd
from harness.util import LOOPBACK, candidate_port, listening_ports, tail

# Benchmark-only credentials (never printed). Letters and digits only: the child Squid's
# `login=user:pass` and tinyproxy's `user:pass@` take them unescaped.
USER = "benchuser"
PASSWORD = "BenchPw7q2Lx9Vk4"
REALM = "authshim-bench"
PASSWORD_ENV = "AUTHSHIM_BENCH_PASSWORD"

TINYPROXY = "/usr/bin/tinyproxy"

FILES = {"1k": 1024, "64k": 64 * 1024, "5m": 5 * 1024 * 1024, "100m": 100 * 1024 * 1024}

# nginx for the benchmark: like the harness's (single process, sendfile, long keep-alive) but
# without the access log, with room for the idle-connection test, and logging errors only.
_NGINX_CONF = """\
{user}
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{http_port};
        server_name _;
        root {www};
    }}
    server {{
        listen {host}:{tls_port} ssl;
        server_name localhost;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        root {www};
    }}
}}
"""


class BenchNginx(Nginx):
    """The harness's Nginx (files, certificate, ports, start-up) with the benchmark's config."""

    CONF = _NGINX_CONF


def _wait_listening(p: ManagedProcess, ports: set[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not p.running():
            return False
        if ports <= listening_ports(p.pid):
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------------------------
# Process-tree accounting (CPU time, memory)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(root: int) -> float:
    """utime + stime of `root` and its descendants (all threads, live and exited), seconds."""
    ticks = 0
    for pid in process_tree(root):
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(f[11]) + int(f[12])  # fields 14 and 15 (utime, stime)
    return ticks / CLK_TCK


def memory_kb(root: int, field_name: str = "VmRSS") -> int:
    """`field_name` (VmRSS, VmHWM) summed over `root` and its descendants, KiB."""
    total = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


# ---------------------------------------------------------------------------------------------
# Candidates


@dataclass
class Candidate:
    """One way for a client to reach Squid-Basic (or Squid-Digest): `port` is where the client
    sends its proxy requests, `proxy_authorization` the header value the client itself sends
    (only candidate A), `pid` the root of the candidate's own processes (None for A: there
    is nothing between client and Squid), `upstream` the Squid behind it."""

    key: str
    label: str
    port: int
    upstream: Squid
    pid: int | None = None
    proxy_authorization: str | None = None
    notes: list[str] = field(default_factory=list)
    log_path: Path | None = None


def basic_header() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Environment:
    """Starts and stops everything. `candidates` maps key -> Candidate, in display order:
    A, authshim-basic, authshim-digest, squid-child, tinyproxy."""

    def __init__(self, workdir: Path, binary: Path):
        self.workdir = Path(workdir)
        self.binary = Path(binary)
        self.nginx: BenchNginx | None = None
        self.squid_basic: Squid | None = None
        self.squid_digest: Squid | None = None
        self.squid_child: Squid | None = None
        self.tinyproxy: ManagedProcess | None = None
        self.shims: list[Authshim] = []
        self.candidates: dict[str, Candidate] = {}
        self.secrets_dir = self.workdir / "secrets"
        self.password_file: Path | None = None
        self.tinyproxy_conf_text = ""

    # -- origin and upstreams ------------------------------------------------------------

    def start_origin(self, with_big: bool = True):
        self.nginx = BenchNginx(self.workdir)
        for name, size in FILES.items():
            if name == "100m" and not with_big:
                continue
            self.nginx.add_file(name, size)
        self.nginx.start()

    def start_upstreams(self):
        sb = Squid(self.workdir, name="squid-basic")
        d = sb.prepare_dir()
        htpasswd = write_htpasswd(d / "htpasswd", {USER: PASSWORD}, "-m")
        sb.auth = [SquidAuth("basic", [BASIC_NCSA_AUTH, htpasswd], realm=REALM)]
        self.squid_basic = sb.start()

        sd = Squid(self.workdir, name="squid-digest")
        d = sd.prepare_dir()
        pwfile = write_digest_file(d / "digest-passwords", {USER: PASSWORD}, REALM)
        # Default nonce settings: no nonce_* options.
        sd.auth = [SquidAuth("digest", [DIGEST_FILE_AUTH, pwfile], realm=REALM)]
        self.squid_digest = sd.start()

        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets_dir, 0o700)
        self.password_file = write_secret(self.secrets_dir / "bench-password.txt", PASSWORD)

    # -- candidates ----------------------------------------------------------------------

    def authshim_config(self, squid: Squid, scheme: str, listen: str = f"{LOOPBACK}:0") -> dict:
        """What an admin gets from the example config plus what the benchmark needs: the
        upstream with credentials and one scheme, the nginx ports for CONNECT, room for the
        idle-connection test, and the log in a file at the default level (info), as the
        service runs it."""
        return make_config(
            squid.address, upstream_name="squid",
            listen=[listen],
            upstreams=[{"name": "squid", "address": squid.address, "credentials": "machine",
                        "schemes": [scheme]}],
            credentials={"machine": {"username": USER,
                                     "password": {"file": str(self.password_file)}}},
            access={"connect_ports": [443, self.nginx.http_port, self.nginx.tls_port]},
            limits={"max_connections": 12000},
            log={"level": "info", "file": "authshim.log"})

    def start_authshim(self, name: str, scheme: str = "basic") -> Authshim:
        squid = self.squid_basic if scheme == "basic" else self.squid_digest
        shim = Authshim(self.workdir, self.authshim_config(squid, scheme), name=name)
        try:
            shim.start(timeout=20)
        except RuntimeError as e:
            raise RuntimeError(f"authshim ({name}) did not start: {e}") from None
        self.shims.append(shim)
        return shim

    def start_squid_child(self):
        up = self.squid_basic
        extra = (f"cache_peer {LOOPBACK} parent {up.port} 0 no-query default "
                 f"login={USER}:{PASSWORD}\n"
                 "never_direct allow all\n"
                 # its own name: the same Via name as the upstream's is a forwarding loop (403)
                 "visible_hostname squid-child.test\n")
        sc = Squid(self.workdir, name="squid-child", extra=extra)
        sc.prepare_dir()
        self.squid_child = sc.start()
        # squid.conf holds the password for cache_peer login=: readable by Squid only.
        Squid.give_to_proxy(sc.dir / "squid.conf", 0o600)

    def tinyproxy_conf(self, port: int, log: Path) -> str:
        n = self.nginx
        # Debian's /etc/tinyproxy/tinyproxy.conf values (Timeout 600, MaxClients 100, LogLevel
        # Info, ViaProxyName, Allow) except: no User/Group (it runs as the benchmark's user, in
        # the foreground), its own Port/LogFile, the Upstream, and ConnectPort for nginx's ports.
        return (f"Port {port}\nListen {LOOPBACK}\nTimeout 600\nMaxClients 100\n"
                f"LogFile \"{log}\"\nLogLevel Info\nAllow 127.0.0.1\nViaProxyName \"tinyproxy\"\n"
                f"ConnectPort 443\nConnectPort {n.http_port}\nConnectPort {n.tls_port}\n"
                f"Upstream http {USER}:{PASSWORD}@{LOOPBACK}:{self.squid_basic.port}\n")

    def start_tinyproxy(self, attempts: int = 5):
        d = self.workdir / "tinyproxy"
        d.mkdir(parents=True, exist_ok=True)
        last = ""
        for _ in range(attempts):
            port = candidate_port()
            conf = d / "tinyproxy.conf"
            conf.write_text(self.tinyproxy_conf(port, d / "tinyproxy.log"))
            os.chmod(conf, 0o600)
            p = ManagedProcess("tinyproxy", [TINYPROXY, "-d", "-c", conf], d,
                               watchdog=True).start()
            if _wait_listening(p, {port}):
                self.tinyproxy = p
                self.tinyproxy_port = port
                return
            last = (f"tinyproxy exited {p.poll()}; stderr:\n{p.stderr_tail()}\nlog:\n"
                    f"{tail(d / 'tinyproxy.log')}")
            p.stop(signal.SIGKILL, timeout=5)
        raise RuntimeError(f"tinyproxy did not start: {last}")

    def start_candidates(self, keys: list[str]):
        sb = self.squid_basic
        if "A" in keys:
            self.candidates["A"] = Candidate(
                "A", "A: client → Squid-Basic (pre-emptive Basic)", sb.port, sb,
                proxy_authorization=basic_header())
        if "authshim-basic" in keys:
            s = self.start_authshim("authshim-basic", "basic")
            self.candidates["authshim-basic"] = Candidate(
                "authshim-basic", "authshim → Squid-Basic", s.port, sb, pid=s.pid,
                log_path=s.log_file())
        if "authshim-digest" in keys:
            s = self.start_authshim("authshim-digest", "digest")
            self.candidates["authshim-digest"] = Candidate(
                "authshim-digest", "authshim → Squid-Digest", s.port, self.squid_digest,
                pid=s.pid, log_path=s.log_file())
        if "squid-child" in keys:
            self.start_squid_child()
            self.candidates["squid-child"] = Candidate(
                "squid-child", "Squid child → Squid-Basic", self.squid_child.port, sb,
                pid=self.squid_child.proc.pid)
        if "tinyproxy" in keys:
            self.start_tinyproxy()
            self.candidates["tinyproxy"] = Candidate(
                "tinyproxy", "tinyproxy → Squid-Basic", self.tinyproxy_port, sb,
                pid=self.tinyproxy.pid)

    def check_alive(self):
        """Raises when a server died during the run (with its log tail)."""
        for name, p, log in self._servers():
            if p is not None and not p.running():
                raise RuntimeError(f"{name} exited ({p.poll()}) during the benchmark; "
                                   f"log tail:\n{log()}")

    def _servers(self):
        out = []
        if self.nginx:
            out.append(("nginx", self.nginx.proc, lambda: tail(self.nginx.dir / "error.log")))
        for s in (self.squid_basic, self.squid_digest, self.squid_child):
            if s is not None:
                out.append((s.name, s.proc, s.cache_log_tail))
        if self.tinyproxy:
            out.append(("tinyproxy", self.tinyproxy,
                        lambda: tail(self.workdir / "tinyproxy" / "tinyproxy.log")))
        for shim in self.shims:
            if not shim.stopped:
                out.append((shim.name, shim.proc, shim.log_tail))
        return out

    def stop(self):
        for shim in self.shims:
            try:
                shim.stop()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        if self.tinyproxy:
            self.tinyproxy.stop(signal.SIGTERM, timeout=10)
        for s in (self.squid_child, self.squid_digest, self.squid_basic, self.nginx):
            if s is not None:
                try:
                    s.stop()
                except Exception:  # noqa: BLE001
                    pass
        hproc.kill_all_live()


# ---------------------------------------------------------------------------------------------
# Start-to-listening


def squid_child_conf_for(env: Environment, d: Path, port: int) -> str:
    up = env.squid_basic
    extra = (f"cache_peer {LOOPBACK} parent {up.port} 0 no-query default "
             f"login={USER}:{PASSWORD}\nnever_direct allow all\n"
             "visible_hostname squid-child.test\n")
    return SQUID_CONF.format(host=LOOPBACK, port=port, dir=d, idle="2 minutes", extra=extra,
                             auth="", access="http_access allow test_clients\n")


def time_to_listen(argv: list, port: int, cwd: Path, name: str, timeout: float = 20.0,
                   env: dict | None = None, watchdog: bool = False) -> float:
    """Spawns `argv`, connects to `port` every 1 ms until it accepts; returns the seconds
    from spawn to the first accepted connection, then stops the process (SIGTERM, then
    SIGKILL)."""
    import socket
    p = ManagedProcess(name, argv, cwd, env=env, watchdog=watchdog)
    t0 = time.perf_counter()
    p.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket()
            try:
                s.connect((LOOPBACK, port))
                return time.perf_counter() - t0
            except OSError:
                pass
            finally:
                s.close()
            if not p.running():
                raise RuntimeError(f"{name} exited {p.poll()} before listening; stderr:\n"
                                   f"{p.stderr_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen on {port} within {timeout}s; "
                                   f"stderr:\n{p.stderr_tail()}")
            time.sleep(0.001)
    finally:
        p.stop(signal.SIGTERM, timeout=15)


def run_quiet(argv: list, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, text=True, errors="replace")
