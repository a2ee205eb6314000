"""Process lifecycle: SIGTERM lets an in-flight download finish within timeouts.shutdown,
refuses new connections and exits 0; SIGINT does the same; idle keep-alive clients do not
hold shutdown up; a download outlasting timeouts.shutdown is cut and the process still
exits 0 in time."""

import signal
import socket
import subprocess
import time

from harness.authshim import make_config
from harness.client import CURL, RawConn, sha256_file
from harness.util import clean_env, slow_factor, wait_until


def _start_download(shim_port, url, out, rate):
    argv = [CURL, "-sS", "--max-time", str(int(60 * slow_factor())), "--proxy",
            f"http://127.0.0.1:{shim_port}", "--limit-rate", rate, "-o", str(out),
            "-w", "%{http_code} %{size_download}", url]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())


def _connect_refused(port) -> bool:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    finally:
        s.close()


def test_sigterm_lets_inflight_download_finish(start_authshim, squid, nginx, big_file, tmp_root):
    shim = start_authshim(make_config(squid.address, timeouts={"shutdown": "10s"}), "graceful")
    out = tmp_root / "graceful.out"
    dl = _start_download(shim.port, nginx.url("/big.bin"), out, "16M")  # ~3.3 s
    try:
        wait_until(lambda: out.exists() and out.stat().st_size > 4 * 1024 * 1024, 20 * slow_factor(),
                   what="download progress")
        t_term = time.monotonic()
        shim.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert shim.proc.running(), "authshim exited with a download in flight"
        assert _connect_refused(shim.port), "a new connection was accepted after SIGTERM"
        stdout, stderr = dl.communicate(timeout=60 * slow_factor())
        assert dl.returncode == 0, f"curl exit {dl.returncode}: {stderr!r}"
        assert stdout.decode() == f"200 {big_file.size}", stdout
        assert sha256_file(out) == big_file.sha256
        status = shim.proc.wait(timeout=shim.shutdown_timeout + 2)
        took = time.monotonic() - t_term
        assert status == 0, f"exit status {status} after SIGTERM"
        assert took <= shim.shutdown_timeout + 2, f"took {took:.1f}s to exit"
    finally:
        if dl.poll() is None:
            dl.kill()
            dl.wait()
        out.unlink(missing_ok=True)


def test_sigint_exits_zero(start_authshim, squid):
    shim = start_authshim(make_config(squid.address, timeouts={"shutdown": "3s"}), "sigint")
    status, took, killed = shim.stop(signal.SIGINT)
    assert not killed and status == 0, (status, took)


def test_idle_keepalive_client_does_not_hold_shutdown(start_authshim, squid, nginx):
    shim = start_authshim(make_config(squid.address, timeouts={"shutdown": "3s"}), "idle-client")
    host = f"127.0.0.1:{nginx.http_port}"
    with RawConn(shim.port) as c:
        c.send(f"GET http://{host}/small.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert c.read_response().status == 200
        status, took, killed = shim.stop(signal.SIGTERM)
        assert not killed and status == 0, (status, took)
        assert c.closed_by_peer(1.0), "idle client connection still open after exit"


def test_download_outlasting_shutdown_is_cut(start_authshim, squid, nginx, big_file, tmp_root):
    shim = start_authshim(make_config(squid.address, timeouts={"shutdown": "2s"}), "forced")
    out = tmp_root / "forced.out"
    dl = _start_download(shim.port, nginx.url("/big.bin"), out, "2M")  # would take 25 s
    try:
        wait_until(lambda: out.exists() and out.stat().st_size > 512 * 1024, 20 * slow_factor(),
                   what="download progress")
        status, took, killed = shim.stop(signal.SIGTERM)
        assert not killed, f"not stopped within shutdown + 2s ({took:.1f}s)"
        assert status == 0, f"exit status {status}"
        assert took >= 1.5, f"exited after {took:.2f}s without waiting for the in-flight download"
        dl.wait(timeout=10)
        assert dl.returncode != 0, "the download should have been cut"
    finally:
        if dl.poll() is None:
            dl.kill()
            dl.wait()
        out.unlink(missing_ok=True)


def test_log_file_relative_to_config(start_authshim, squid, nginx):
    shim = start_authshim(make_config(squid.address, log={"level": "info", "file": "logs/authshim.log"}),
                          "log-file")
    assert shim.log_file() == shim.dir / "logs" / "authshim.log"
    text = shim.log_file().read_text()
    assert f"listening on 127.0.0.1:{shim.port}" in text, text
