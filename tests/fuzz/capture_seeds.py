#!/usr/bin/env python3
"""Captures real 407 challenges for the fuzz seed corpora: starts Squid 5 (Basic, Digest, both)
and Apache httpd's Digest forward proxy through the integration harness, sends each a request
without credentials, and writes what came back:
  corpus/challenge/<name>      the Proxy-Authenticate values, one per line
  corpus/request_head/resp-<name>  the raw 407 response head (a response seed)
  corpus/request_head/req-curl-*   the request heads curl sends to a proxy (captured by a socket)
Run once by hand (needs squid, apache2, curl: scripts/setup.sh); the output is committed.
    python3 tests/fuzz/capture_seeds.py"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here.parent / "integration"))

from harness.apache import Apache  # noqa: E402
from harness.squid import BASIC_NCSA_AUTH, DIGEST_FILE_AUTH, Squid, SquidAuth  # noqa: E402
from harness.squid_auth import write_digest_file, write_htpasswd  # noqa: E402

corpus = here / "corpus"


def raw_exchange(address: str, request: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"


def challenges(head: bytes) -> bytes:
    values = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
              if line.lower().startswith(b"proxy-authenticate:")]
    return b"\n".join(values)


def save(name: str, head: bytes):
    (corpus / "challenge" / name).write_bytes(challenges(head))
    (corpus / "request_head" / f"resp-{name}").write_bytes(head)
    print(f"{name}: {challenges(head)!r}")


GET = b"GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: capture\r\n\r\n"
CONNECT = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"


def capture_squid(work: Path):
    users = {"alice": "wonderland"}
    digest_file = work / "digest.pw"
    htpasswd = work / "htpasswd"
    configs = {
        "squid-basic": [SquidAuth("basic", [BASIC_NCSA_AUTH, htpasswd])],
        "squid-digest": [SquidAuth("digest", [DIGEST_FILE_AUTH, "-c", digest_file],
                                   options=["nonce_max_count 50"])],
        "squid-digest-basic": [SquidAuth("digest", [DIGEST_FILE_AUTH, "-c", digest_file]),
                               SquidAuth("basic", [BASIC_NCSA_AUTH, htpasswd])],
    }
    for name, auth in configs.items():
        squid = Squid(work, name=name, auth=auth)
        squid.prepare_dir()
        write_htpasswd(htpasswd, users)
        write_digest_file(digest_file, users, "authshim-test")
        with squid:
            save(name, raw_exchange(squid.address, GET))
            save(name + "-connect", raw_exchange(squid.address, CONNECT))


def capture_apache(work: Path):
    apache = Apache(work, {"alice": "wonderland"}, realm="private area")
    try:
        apache.start()
        save("apache-digest", raw_exchange(apache.address, GET))
        save("apache-digest-connect", raw_exchange(apache.address, CONNECT))
    finally:
        apache.stop()


def capture_curl():
    """The heads curl sends through a proxy: a listening socket answers 502 and records them."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    heads = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                heads.append(data)
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    proxy = f"http://127.0.0.1:{port}"
    runs = {
        "req-curl-get": ["curl", "-s", "-x", proxy, "http://example.com/path?q=1"],
        "req-curl-post": ["curl", "-s", "-x", proxy, "-d", "a=b&c=d", "http://example.com/form"],
        "req-curl-chunked": ["curl", "-s", "-x", proxy, "-H", "Transfer-Encoding: chunked",
                             "-d", "hello", "http://example.com/upload"],
        "req-curl-connect": ["curl", "-s", "-x", proxy, "https://example.com/"],
        "req-curl-http10": ["curl", "-s", "-0", "-x", proxy, "http://example.com/"],
        "req-curl-ipv6": ["curl", "-s", "-g", "-x", proxy, "http://[2001:db8::1]:8080/x"],
    }
    for name, argv in runs.items():
        before = len(heads)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        if len(heads) > before:
            head = heads[-1].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            (corpus / "request_head" / name).write_bytes(head)
            print(f"{name}: {head!r}")
    server.close()


def main():
    for d in ("challenge", "request_head"):
        (corpus / d).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="authshim-seeds-") as tmp:
        Path(tmp).chmod(0o755)  # Squid's and Apache's users must reach their folders
        capture_squid(Path(tmp))
        capture_apache(Path(tmp))
    capture_curl()


if __name__ == "__main__":
    main()
