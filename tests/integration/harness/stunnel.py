"""TLS in front of a plain-HTTP upstream proxy: stunnel4 in server mode (`foreground = yes`, no
pid file, no `setuid`, so it stays the process started and dies with the test), and a throwaway
PKI made with the openssl CLI (a CA, a server certificate it signs, and unrelated CAs for the
"wrong CA" cases).

One stunnel can accept on several loopback addresses (one stunnel service each, same
certificate, same target): `127.0.0.1` for the normal cases, `127.0.0.2` to reach the same
proxy under an address the certificate does not name."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .proc import ManagedProcess, ServerFixture
from .util import LOOPBACK, listening_ports

STUNNEL = "/usr/bin/stunnel4"
OPENSSL = "openssl"

# Every Stunnel started in this pytest session, newest last (for failure reports).
STARTED: list["Stunnel"] = []


def stunnel_available() -> bool:
    return Path(STUNNEL).exists()


def _openssl(args: list, cwd: Path):
    cp = subprocess.run([OPENSSL, *[str(a) for a in args]], cwd=cwd, capture_output=True,
                        text=True, timeout=60, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed ({cp.returncode}): {cp.stderr[-2000:]}")


_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass
class CA:
    cert: Path  # PEM certificate (what a client puts in its trust file)
    key: Path
    subject: str


def make_ca(folder: Path, name: str, common_name: str) -> CA:
    """A self-signed CA (`NAME.pem`, `NAME.key`) valid for 2 days."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subject = f"/CN={common_name}"
    _openssl(["req", "-x509", *_EC_KEY, "-subj", subject, "-days", "2",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-keyout", key, "-out", cert], folder)
    return CA(cert, key, subject)


def issue_server_cert(ca: CA, folder: Path, name: str, common_name: str,
                      san: str) -> tuple[Path, Path]:
    """A server certificate (`NAME.pem`, `NAME.key`) signed by `ca`, with the given
    subjectAltName (e.g. `DNS:localhost,IP:127.0.0.1`), serverAuth, valid for 2 days."""
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl(["req", "-new", *_EC_KEY, "-subj", f"/CN={common_name}", "-keyout", key,
              "-out", csr], folder)
    _openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
              "-set_serial", str(random.randint(1 << 32, 1 << 62)), "-days", "2",
              "-extfile", ext, "-out", cert], folder)
    csr.unlink()
    return cert, key


_CONF_HEAD = """\
foreground = yes
pid =
syslog = no
debug = info
"""

_SERVICE = """\
[{name}]
accept = {host}:{port}
connect = {target}
cert = {cert}
key = {key}
"""


def _free_port(host: str) -> int:
    """A port below the ephemeral range that `host` can bind right now (stunnel cannot be
    given port 0; `start()` checks it really got the port)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise RuntimeError(f"no free port on {host}")


class Stunnel(ServerFixture):
    """stunnel4 terminating TLS for `target` (`host:port` of a plain TCP server) on each
    address in `hosts`. `ports[host]` is where it accepts; `port` the first one's."""

    def __init__(self, workdir: Path, target: str, cert: Path, key: Path, name: str = "stunnel",
                 hosts: tuple[str, ...] = (LOOPBACK,)):
        self.dir = Path(workdir) / name
        self.name = name
        self.target = target
        self.cert = Path(cert)
        self.key = Path(key)
        self.hosts = tuple(hosts)
        self.ports: dict[str, int] = {}
        self.proc: ManagedProcess | None = None

    @property
    def port(self) -> int:
        return self.ports[self.hosts[0]]

    def start(self, attempts: int = 5) -> "Stunnel":
        self.dir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(attempts):
            ports: dict[str, int] = {}
            for host in self.hosts:
                port = _free_port(host)
                while port in ports.values():
                    port = _free_port(host)
                ports[host] = port
            self.ports = ports
            conf = self.dir / "stunnel.conf"
            conf.write_text(_CONF_HEAD + "".join(
                _SERVICE.format(name=f"proxy-{i}", host=h, port=p, target=self.target,
                                cert=self.cert, key=self.key)
                for i, (h, p) in enumerate(ports.items())))
            self.proc = ManagedProcess(self.name, [STUNNEL, conf], self.dir).start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if not self.proc.running():
                    break
                if set(ports.values()) <= listening_ports(self.proc.pid):
                    STARTED.append(self)
                    return self
                time.sleep(0.05)
            last_error = f"stunnel exited {self.proc.poll()}: {self.proc.stderr_tail()}"
            self.proc.stop(signal.SIGKILL, timeout=5)
        raise RuntimeError(f"stunnel did not start: {last_error}")

    def log_tail(self, limit: int = 4000) -> str:
        return self.proc.stderr_tail(limit) if self.proc else ""

    def log_text(self) -> str:
        return self.proc.stderr_text() if self.proc else ""

