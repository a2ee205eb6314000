"""Memory: authshim streams bodies, so its peak RSS stays small while a 50 MB download goes
through it at a rate the client sets. Release build only (sanitizers inflate memory)."""

import threading

import pytest

from harness.authshim import make_config
from harness.client import curl, sha256_file

PEAK_LIMIT_KB = 32 * 1024


@pytest.mark.release_only
def test_peak_rss_under_32mb_during_50mb_download(start_authshim, squid, nginx, big_file, tmp_root):
    shim = start_authshim(make_config(squid.address), "rss")
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.wait(0.05):
            try:
                samples.append(shim.rss_kb("VmRSS"))
            except (OSError, KeyError):
                return

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out = tmp_root / "rss.out"
    try:
        r = curl(["--limit-rate", "20M", "-o", out, "-w", "%{http_code}", nginx.url("/big.bin")],
                 proxy_port=shim.port, max_time=60)
        stop.set()
        t.join()
        assert r.returncode == 0 and r.text == "200", r.describe()
        assert sha256_file(out) == big_file.sha256
        hwm = shim.rss_kb("VmHWM")
        assert hwm < PEAK_LIMIT_KB, \
            f"VmHWM {hwm} kB >= {PEAK_LIMIT_KB} kB (VmRSS samples max {max(samples, default=0)} kB)"
    finally:
        stop.set()
        out.unlink(missing_ok=True)
