"""nginx as the origin server: static files over HTTP (ETag / Last-Modified, access log) and
the same files over TLS (the target of CONNECT tests). Single process (`master_process off`)
so that stopping it leaves no worker behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

from .proc import ManagedProcess, ServerFixture
from .util import LOOPBACK, candidate_port, listening_ports, tail

NGINX = "/usr/sbin/nginx"

_CONF = """\
{user}
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    access_log {dir}/access.log;
    sendfile on;
    keepalive_requests 100000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{http_port};
        server_name _;
        root {www};
        etag on;
        location /ocsp/ {{
            default_type application/ocsp-response;
            return 200 "ocsp-ok\\n";
        }}
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


class StaticFile:
    def __init__(self, path: Path, data_sha256: str, size: int):
        self.path = path
        self.name = path.name
        self.sha256 = data_sha256
        self.size = size


class Nginx(ServerFixture):
    # The config template (str.format fields: user, dir, www, host, http_port, tls_port); a
    # subclass may replace it (bench/candidates.py: no access log, room for many connections).
    CONF = _CONF

    def __init__(self, workdir: Path):
        self.dir = Path(workdir) / "nginx"
        self.www = self.dir / "www"
        self.http_port = 0
        self.tls_port = 0
        self.proc: ManagedProcess | None = None
        self.files: dict[str, StaticFile] = {}

    @property
    def cert(self) -> Path:
        return self.dir / "cert.pem"

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.http_port}{path}"

    def tls_url(self, path: str) -> str:
        return f"https://localhost:{self.tls_port}{path}"

    def add_file(self, name: str, size: int) -> StaticFile:
        """Writes `size` random bytes to www/name (once) and returns its sha256."""
        if name in self.files:
            return self.files[name]
        self.www.mkdir(parents=True, exist_ok=True)
        path = self.www / name
        h = hashlib.sha256()
        with open(path, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        os.chmod(path, 0o644)
        self.files[name] = StaticFile(path, h.hexdigest(), size)
        return self.files[name]

    def _make_cert(self):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-subj", "/CN=localhost", "-days", "2",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(self.dir / "key.pem"), "-out", str(self.cert)],
            check=True, capture_output=True, timeout=60)

    def start(self, attempts: int = 5) -> "Nginx":
        self.www.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(self.www, 0o755)
        self._make_cert()
        user = "user root root;" if os.geteuid() == 0 else ""
        last_error = ""
        for _ in range(attempts):
            self.http_port = candidate_port()
            self.tls_port = candidate_port()
            if self.tls_port == self.http_port:
                continue
            conf = self.dir / "nginx.conf"
            conf.write_text(self.CONF.format(user=user, dir=self.dir, www=self.www, host=LOOPBACK,
                                             http_port=self.http_port, tls_port=self.tls_port))
            self.proc = ManagedProcess(
                "nginx", [NGINX, "-p", self.dir, "-e", self.dir / "error.log", "-c", conf],
                self.dir).start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if not self.proc.running():
                    break
                if {self.http_port, self.tls_port} <= listening_ports(self.proc.pid):
                    return self
                time.sleep(0.05)
            last_error = f"nginx exited {self.proc.poll()}: {tail(self.dir / 'error.log')}"
            self.proc.stop(signal.SIGKILL, timeout=5)
        raise RuntimeError(f"nginx did not start: {last_error}")

