#!/usr/bin/env python3
"""authshim benchmark: authshim in front of Squid (Basic and Digest) compared with a client
that sends pre-emptive Basic credentials straight to Squid ("A"), a child Squid with
`cache_peer ... login=` and tinyproxy with an authenticated `Upstream`. Everything runs on
loopback and is started and stopped here. See bench/README.md.

    python3 bench/bench.py [--binary PATH] [--quick] [--only GROUP,...] [--repeat N]
                           [--duration S] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(BENCH_DIR))

from harness import proc as hproc  # noqa: E402
from harness.authshim import LISTENING_RE  # noqa: E402
from harness.proc import ManagedProcess  # noqa: E402
from harness.util import LOOPBACK, LogCursor, candidate_port, tail, wait_until_quiet  # noqa: E402

import candidates as cands  # noqa: E402
import load  # noqa: E402
import report  # noqa: E402

GROUPS = ["load", "cold", "tls", "tunnel", "digest", "callgrind", "memory", "startup"]
ALL_CANDIDATES = ["A", "authshim-basic", "authshim-digest", "squid-child", "tinyproxy"]

# (point key, file, connections, wrk threads)
WRK_POINTS = [
    ("1k@1", "1k", 1, 1), ("1k@16", "1k", 16, 1), ("1k@64", "1k", 64, 2),
    ("64k@1", "64k", 1, 1), ("64k@16", "64k", 16, 1), ("64k@64", "64k", 64, 2),
    ("5m@4", "5m", 4, 1),
]

REQUIRED_TOOLS = {
    "wrk": "/usr/bin/wrk", "curl": "/usr/bin/curl", "nginx": "/usr/sbin/nginx",
    "squid": "/usr/sbin/squid", "tinyproxy": cands.TINYPROXY, "valgrind": "/usr/bin/valgrind",
    "callgrind_control": "/usr/bin/callgrind_control", "openssl": "/usr/bin/openssl",
    "htpasswd": "/usr/bin/htpasswd", "basic_ncsa_auth": "/usr/lib/squid/basic_ncsa_auth",
    "digest_file_auth": "/usr/lib/squid/digest_file_auth",
}
GROUP_TOOLS = {"load": ["wrk"], "callgrind": ["valgrind", "callgrind_control"]}

T0 = time.monotonic()


def say(msg: str):
    print(f"[bench {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


def spread(values: list[float]) -> float:
    m = statistics.median(values)
    return (max(values) - min(values)) / m if m else 0.0


class Bench:
    def __init__(self, args):
        self.args = args
        self.env: cands.Environment | None = None
        self.idle = load.IdleWaiter(max_wait=args.idle_timeout)
        self.results: dict = {"points": {}, "extras": {}, "invalid": [], "errors": [],
                              "notes": {}}
        self.workdir = Path(args.workdir)
        self.wrk_log = self.workdir / "wrk.log"

    # -- bookkeeping -----------------------------------------------------------------------

    def point(self, key: str, title: str, unit: str, higher_better: bool, group: str) -> dict:
        return self.results["points"].setdefault(key, {
            "title": title, "unit": unit, "higher_better": higher_better, "group": group,
            "candidates": {}})

    def record(self, key: str, cand: str, value: float, run_info: dict | None = None,
               problems: list[str] | None = None):
        p = self.results["points"][key]
        c = p["candidates"].setdefault(cand, {"values": [], "runs": [], "problems": []})
        c["values"].append(value)
        c["runs"].append(run_info or {})
        if problems:
            c["problems"].extend(problems)
            self.results["invalid"].append(f"{key} / {cand}: {'; '.join(problems)}")
            say(f"!!! INVALID RUN {key} / {cand}: {'; '.join(problems)}")
        c["median"] = statistics.median(c["values"])
        c["noisy"] = len(c["values"]) > 1 and spread(c["values"]) > 0.10
        c["min"], c["max"] = min(c["values"]), max(c["values"])

    def wait_idle(self) -> dict:
        info = self.idle.wait()
        if not info["idle"]:
            say(f"machine not idle after {info['waited']:.1f}s (busy {info['busy']:.0%}); "
                "measuring anyway")
        return info

    def candidates(self, keys=None) -> list[cands.Candidate]:
        keys = keys or ALL_CANDIDATES
        return [self.env.candidates[k] for k in keys if k in self.env.candidates]

    # -- setup -----------------------------------------------------------------------------

    def setup(self, groups: list[str]):
        a = self.args
        self.env = cands.Environment(self.workdir, a.binary)
        say(f"work dir {self.workdir}")
        say("starting nginx (origin), Squid-Basic and Squid-Digest")
        self.env.start_origin(with_big="tunnel" in groups)
        self.env.start_upstreams()
        needed = set()
        if {"load", "cold", "tls", "tunnel"} & set(groups):
            needed |= set(ALL_CANDIDATES)
        if "digest" in groups:
            needed |= {"authshim-digest"}
        say(f"starting candidates: {', '.join(k for k in ALL_CANDIDATES if k in needed)}")
        self.env.start_candidates([k for k in ALL_CANDIDATES if k in needed])
        for c in self.candidates():
            self.smoke_test(c)

    def url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.env.nginx.http_port}/{name}"

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.env.nginx.http_port}"

    def smoke_test(self, c: cands.Candidate):
        """One GET and one CONNECT through the candidate before anything is measured."""
        try:
            load.cold_requests(c.port, self.url("1k"), self.host, c.proxy_authorization, 1)
            load.connect_tls(c.port, f"{LOOPBACK}:{self.env.nginx.tls_port}",
                             c.proxy_authorization, 1)
        except Exception as e:  # noqa: BLE001
            self.env.check_alive()
            raise RuntimeError(f"smoke test through {c.key} failed: {e}") from None

    # -- wrk points --------------------------------------------------------------------------

    def group_load(self):
        a = self.args
        scripts = {}
        for c in self.candidates():
            for f in ("1k", "64k", "5m"):
                scripts[(c.key, f)] = load.write_wrk_script(
                    self.workdir / f"wrk-{c.key}-{f}.lua", self.url(f), self.host,
                    c.proxy_authorization)
        sd = self.env.squid_digest
        for key, f, conns, threads in WRK_POINTS:
            size = cands.FILES[f]
            big = f == "5m"
            p = self.point(key, f"{f.upper()} GET, {conns} conn" + ("s" if conns > 1 else ""),
                           "MB/s" if big else "req/s", True, "load")
            p["connections"], p["threads"], p["file_bytes"] = conns, threads, size
            cpu_key = f"cpu@{key}"
            cp = self.point(cpu_key, f"CPU per request, {key}", "µs/req", False, "cpu")
            cp["hidden"] = key != "1k@16"
            warm = max(1, round(a.duration / 5))
            for c in self.candidates():
                say(f"{key}: warm-up {c.key} ({warm:g}s)")
                w = load.run_wrk(scripts[(c.key, f)], c.port, conns, threads, warm, size,
                                 self.wrk_log)
                if w.problems() and not self.no_keepalive(c, w, conns):
                    say(f"warm-up {key} / {c.key} had problems: {'; '.join(w.problems())}")
            for rep in range(a.repeat):
                for c in self.candidates():
                    self.env.check_alive()
                    idle = self.wait_idle()
                    up_pid = c.upstream.proc.pid
                    cpu0 = cands.cpu_seconds(c.pid) if c.pid else None
                    up0 = cands.cpu_seconds(up_pid)
                    cursor = LogCursor(sd.dir / "access.log") if c.key == "authshim-digest" else None
                    r = load.run_wrk(scripts[(c.key, f)], c.port, conns, threads, a.duration,
                                     size, self.wrk_log)
                    cpu1 = cands.cpu_seconds(c.pid) if c.pid else None
                    up1 = cands.cpu_seconds(up_pid)
                    info = {"wrk": r.to_dict(), "idle": idle}
                    if r.requests:
                        info["upstream_cpu_us_per_req"] = (up1 - up0) / r.requests * 1e6
                    value = r.mb_per_s if big else r.rps
                    problems = r.problems()
                    if problems and self.no_keepalive(c, r, conns):
                        info["no_keepalive"] = True
                        self.results["notes"].setdefault(
                            "tinyproxy-keepalive",
                            "tinyproxy closed the client connection after every response "
                            "(HTTP/1.1 response without `Connection: close`: no client "
                            "keep-alive). wrk counts each such close as a read error (read "
                            "errors ≈ requests) and reconnects, so tinyproxy's wrk numbers are "
                            "one request per connection. Marked † in the tables; not used for "
                            "any verdict.")
                        problems = []
                    self.record(key, c.key, value, info, problems)
                    if c.pid and r.requests:
                        self.record(cpu_key, c.key, (cpu1 - cpu0) / r.requests * 1e6,
                                    {"cpu_s": cpu1 - cpu0, "requests": r.requests})
                    if cursor is not None and key == "1k@16":
                        self.count_digest_407(cursor, r.requests, "digest407@1k@16",
                                              "Digest: 407s per 1000 requests (1 KB, 16 conns)")
                    unit = "MB/s" if big else "req/s"
                    say(f"{key} [{rep + 1}/{a.repeat}] {c.key:16s} {value:10.1f} {unit}  "
                        f"p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms"
                        + (f"  cpu {(cpu1 - cpu0) / max(r.requests, 1) * 1e6:.1f} µs/req"
                           if c.pid else "")
                        + (f"  ERRORS {r.problems()}" if problems else "")
                        + ("  (no keep-alive: read errors = closes)" if info.get("no_keepalive")
                           else ""))
            if key == "64k@64":
                self.peak_rss()

    @staticmethod
    def no_keepalive(c: cands.Candidate, r: load.WrkResult, conns: int) -> bool:
        """True for tinyproxy when its only wrk errors are the read errors of connections it
        closed after a complete response (at most one per request, plus one per connection)."""
        e = r.errors
        return (c.key == "tinyproxy" and r.requests > 0 and e["read"] > 0
                and not (e["connect"] or e["write"] or e["status"] or e["timeout"])
                and e["read"] <= r.requests + conns
                and r.bytes >= r.requests * r.expected_min_bytes)

    def peak_rss(self):
        p = self.point("rss_peak", "Peak RSS after the 64-connection runs (VmHWM)", "MiB",
                       False, "memory")
        for c in self.candidates():
            if c.pid:
                self.record("rss_peak", c.key, cands.memory_kb(c.pid, "VmHWM") / 1024)
        say("peak RSS (MiB): " + ", ".join(f"{k} {v['median']:.1f}"
                                           for k, v in p["candidates"].items()))

    def count_digest_407(self, cursor: LogCursor, client_requests: int, key: str, title: str):
        """407s Squid-Digest logged since `cursor`, per 1000 client requests."""
        try:
            wait_until_quiet(lambda: len(cursor.lines()), 1, quiet=0.5, timeout=30,
                             what="Squid-Digest", unit="lines")
        except TimeoutError as e:
            say(f"warning: {e}")
        lines = cursor.lines()
        n407 = sum(1 for f in lines if len(f) > 3 and f[3] == "TCP_DENIED/407")
        served = len(lines) - n407
        self.point(key, title, "407s/1000 req", False, "digest")
        per = n407 / served * 1000 if served else float("nan")
        self.record(key, "authshim-digest", per,
                    {"squid_lines": len(lines), "n407": n407, "client_requests": client_requests},
                    None if served else ["Squid-Digest logged no served request"])
        say(f"Squid-Digest logged {n407} TCP_DENIED/407 of {len(lines)} lines "
            f"({per:.2f} per 1000 requests)")

    # -- cold latency, CONNECT + TLS, tunnel -----------------------------------------------

    def group_cold(self):
        n = self.args.cold_n
        self.point("cold", f"Cold request (new connection, 1 KB), median of {n}", "ms", False,
                   "latency")
        for rep in range(self.args.repeat):
            for c in self.candidates():
                idle = self.wait_idle()
                t = load.cold_requests(c.port, self.url("1k"), self.host, c.proxy_authorization, n)
                v = statistics.median(t) * 1000
                self.record("cold", c.key, v, {"idle": idle, "p90_ms": _pct(t, 90) * 1000})
                say(f"cold [{rep + 1}/{self.args.repeat}] {c.key:16s} median {v:.3f} ms")

    def group_tls(self):
        n = self.args.cold_n
        target = f"{LOOPBACK}:{self.env.nginx.tls_port}"
        self.point("tls", f"CONNECT + TLS handshake (new connection), median of {n}", "ms",
                   False, "latency")
        for rep in range(self.args.repeat):
            for c in self.candidates():
                idle = self.wait_idle()
                t = load.connect_tls(c.port, target, c.proxy_authorization, n)
                v = statistics.median(t) * 1000
                self.record("tls", c.key, v, {"idle": idle, "p90_ms": _pct(t, 90) * 1000})
                say(f"CONNECT+TLS [{rep + 1}/{self.args.repeat}] {c.key:16s} median {v:.3f} ms")

    def group_tunnel(self):
        secs = max(1.0, self.args.duration * 0.6)
        self.point("tunnel", "CONNECT tunnel throughput (100 MiB over plain http, repeated)",
                   "MB/s", True, "load")
        for rep in range(self.args.repeat):
            for c in self.candidates():
                idle = self.wait_idle()
                mbs, total = load.tunnel_throughput(c.port, self.env.nginx.http_port, "/100m",
                                                    c.proxy_authorization, secs)
                self.record("tunnel", c.key, mbs, {"idle": idle, "bytes": total})
                say(f"tunnel [{rep + 1}/{self.args.repeat}] {c.key:16s} {mbs:.1f} MB/s")

    # -- Digest: keep-alive sequence ---------------------------------------------------------

    def group_digest(self):
        c = self.env.candidates["authshim-digest"]
        cursor = LogCursor(self.env.squid_digest.dir / "access.log")
        ok = load.keepalive_sequence(c.port, self.url("1k"), self.host, None, 1000)
        if ok != 1000:
            self.results["invalid"].append(f"digest sequence: only {ok} of 1000 answered 200")
        self.count_digest_407(cursor, 1000, "digest407@seq",
                              "Digest: 407s per 1000 sequential keep-alive requests")

    # -- callgrind -------------------------------------------------------------------------

    def group_callgrind(self):
        env = self.env
        d = self.workdir / "callgrind"
        d.mkdir(parents=True, exist_ok=True)
        cfg = env.authshim_config(env.squid_basic, "basic")
        cfg_path = d / "authshim.json"
        cfg_path.write_text(json.dumps(cfg, indent=2))
        out_file = d / "callgrind.out"
        argv = ["/usr/bin/valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                self.args.binary, "run", "--config", cfg_path]
        say("callgrind: starting authshim under valgrind (slow)")
        p = ManagedProcess("authshim-callgrind", argv, d).start()
        try:
            log = d / "authshim.log"
            deadline = time.monotonic() + 180
            port = None
            while port is None:
                m = LISTENING_RE.search(log.read_text(errors="replace") if log.exists() else "")
                if m:
                    port = int(m.group(1))
                elif not p.running() or time.monotonic() > deadline:
                    raise RuntimeError(f"authshim under callgrind did not start; stderr:\n"
                                       f"{p.stderr_tail()}\nlog:\n{tail(log)}")
                else:
                    time.sleep(0.2)
            load.keepalive_sequence(port, self.url("1k"), self.host, None, 20)  # warm-up
            self._callgrind_control("-z", p.pid)
            t0 = time.monotonic()
            ok = load.keepalive_sequence(port, self.url("1k"), self.host, None, 1000)
            took = time.monotonic() - t0
            before = set(d.glob("callgrind.out*"))
            self._callgrind_control("-d", p.pid)
            dumps = sorted(set(d.glob("callgrind.out*")) - before,
                           key=lambda x: x.stat().st_mtime)
            if not dumps:
                raise RuntimeError("callgrind_control -d produced no dump file")
            dump = dumps[-1]
            ir = _callgrind_total(dump)
            self.point("ir", "Instructions per 1 KB request (callgrind, 1000 keep-alive)",
                       "Ir/req", False, "cpu")
            self.record("ir", "authshim-basic", ir / 1000,
                        {"dump": str(dump), "total_ir": ir, "ok": ok, "seconds": took},
                        [f"only {ok} of 1000 answered 200"] if ok != 1000 else None)
            self.results["extras"]["callgrind_dump"] = str(dump)
            say(f"callgrind: {ir / 1000:,.0f} Ir per request ({ok}/1000 ok, {took:.1f}s); "
                f"dump: {dump}")
        finally:
            p.stop(signal.SIGTERM, timeout=60)

    def _callgrind_control(self, flag: str, pid: int):
        cp = subprocess.run(["/usr/bin/callgrind_control", flag, str(pid)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=120)
        if cp.returncode != 0:
            raise RuntimeError(f"callgrind_control {flag} failed: {cp.stdout}{cp.stderr}")

    # -- memory ------------------------------------------------------------------------------

    def group_memory(self):
        env = self.env
        n = self.args.idle_connections
        t_spawn = time.monotonic()
        shim = env.start_authshim("authshim-memory", "basic")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t_spawn)))
        rss_start = cands.memory_kb(shim.pid) / 1024
        load.keepalive_sequence(shim.port, self.url("1k"), self.host, None, 10)
        rss_few = cands.memory_kb(shim.pid) / 1024
        for key, title, v in (
                ("rss_idle", "Idle RSS, 1 s after start", rss_start),
                ("rss_few", "RSS after 10 requests", rss_few)):
            self.point(key, title, "MiB", False, "memory")
            self.record(key, "authshim-basic", v)
        say(f"RSS: {rss_start:.2f} MiB 1 s after start, {rss_few:.2f} MiB after 10 requests")
        self.wait_idle()
        say(f"opening {n} idle keep-alive connections to authshim")
        socks, ok, took = load.open_idle_connections(shim.port, self.url("1k"), self.host, n)
        try:
            rss = cands.memory_kb(shim.pid) / 1024
            still = load.still_open(socks)
        finally:
            for s in socks:
                s.close()
        problems = []
        if ok != n:
            problems.append(f"only {ok} of {n} answered 200")
        if still != n:
            problems.append(f"only {still} of {n} still open when RSS was read")
        self.point("rss_idle_conns", f"RSS with {n:,} idle keep-alive connections", "MiB",
                   False, "memory")
        self.record("rss_idle_conns", "authshim-basic", rss,
                    {"opened_in_s": took, "answered": ok, "still_open": still}, problems)
        say(f"RSS with {n} idle connections: {rss:.1f} MiB (opened in {took:.1f}s, "
            f"{still} still open)")
        shim.stop()

    # -- start to listening ------------------------------------------------------------------

    def group_startup(self):
        env = self.env
        self.point("startup", "Start to listening (median of 11)", "ms", False, "startup")
        d = self.workdir / "startup"
        d.mkdir(parents=True, exist_ok=True)
        times: dict[str, list[float]] = {"authshim-basic": [], "tinyproxy": [],
                                         "squid-child": []}
        sq_dir = d / "squid-child"
        sq = cands.Squid(d, name="squid-child")
        sq.dir = sq_dir
        sq.prepare_dir()
        for i in range(11):
            port = candidate_port()
            cfg = env.authshim_config(env.squid_basic, "basic", listen=f"{LOOPBACK}:{port}")
            cfg["log"]["file"] = str(d / "authshim.log")
            path = d / "authshim.json"
            path.write_text(json.dumps(cfg))
            times["authshim-basic"].append(cands.time_to_listen(
                [self.args.binary, "run", "--config", path], port, d, "authshim-start"))
            port = candidate_port()
            conf = d / "tinyproxy.conf"
            conf.write_text(env.tinyproxy_conf(port, d / "tinyproxy.log"))
            os.chmod(conf, 0o600)
            times["tinyproxy"].append(cands.time_to_listen(
                [cands.TINYPROXY, "-d", "-c", conf], port, d, "tinyproxy-start"))
            port = candidate_port()
            conf = sq_dir / "squid.conf"
            conf.write_text(cands.squid_child_conf_for(env, sq_dir, port))
            cands.Squid.give_to_proxy(conf, 0o600)
            times["squid-child"].append(cands.time_to_listen(
                [cands.SQUID, "-N", "-f", conf], port, sq_dir, "squid-child-start",
                watchdog=True))
        for k, v in times.items():
            self.record("startup", k, statistics.median(v) * 1000,
                        {"all_ms": [round(x * 1000, 2) for x in v]})
            say(f"start to listening {k}: median {statistics.median(v) * 1000:.1f} ms")

    # -- run -------------------------------------------------------------------------------

    def run(self, groups: list[str]):
        self.setup(groups)
        for g in groups:
            say(f"=== {g} ===")
            try:
                getattr(self, f"group_{g}")()
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - one group failing must not lose the rest
                msg = f"group {g} failed: {e}"
                say("!!! " + msg)
                traceback.print_exc()
                self.results["errors"].append(msg)
                self.env.check_alive()


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def _callgrind_total(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"(?:summary|totals):\s+(\d+)", line)
        if m:
            return int(m.group(1))
    raise RuntimeError(f"no totals in {path}")


# ---------------------------------------------------------------------------------------------
# Machine and versions


def first_line(argv: list, stderr: bool = False) -> str:
    try:
        cp = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    text = (cp.stdout + cp.stderr) if not stderr else (cp.stderr + cp.stdout)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return lines[0] if lines else "?"


def machine_info() -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = next((l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines()
                if l.startswith("MemTotal:")), "0")
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
            "ram_gib": round(int(mem) / 1024 / 1024, 1),
            "os": next((l.split("=", 1)[1].strip('"') for l in
                        Path("/etc/os-release").read_text().splitlines()
                        if l.startswith("PRETTY_NAME=")), "?")}


def git_sha() -> tuple[str, bool]:
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                     "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return sha or "unknown", dirty
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", False


def versions(binary: Path) -> dict:
    return {
        "authshim": first_line([binary, "--version"]),
        "squid": first_line([cands.SQUID, "-v"]),
        "nginx": first_line(["/usr/sbin/nginx", "-v"], stderr=True),
        "tinyproxy": first_line([cands.TINYPROXY, "-v"]),
        "wrk": first_line([load.WRK, "-v"]),
        "curl": first_line(["/usr/bin/curl", "--version"]),
        "valgrind": first_line(["/usr/bin/valgrind", "--version"]),
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=REPO / "build/release/service/authshim",
                    help="authshim binary (default: build/release/service/authshim; "
                         "build/release/authshim is tried too)")
    ap.add_argument("--quick", action="store_true",
                    help="1 repeat, 2 s runs, 50 cold connections (for development)")
    ap.add_argument("--only", default="",
                    help=f"comma-separated metric groups: {','.join(GROUPS)}")
    ap.add_argument("--repeat", type=int, default=None, help="repeats per point (default 3)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds per wrk run (default 5)")
    ap.add_argument("--cold-n", type=int, default=None,
                    help="sequential new connections per cold measurement (default 200)")
    ap.add_argument("--idle-connections", type=int, default=10000)
    ap.add_argument("--idle-timeout", type=float, default=20.0,
                    help="max seconds to wait for an idle machine before each run")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where servers, logs and the callgrind dump go "
                         "(default: a new /tmp/authshim-bench-*)")
    ap.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    ap.add_argument("--keep-files", action="store_true",
                    help="keep the origin's test files (105 MiB) in the work dir")
    a = ap.parse_args(argv)
    a.repeat = a.repeat or (1 if a.quick else 3)
    a.duration = max(1, round(a.duration or (2 if a.quick else 5)))  # wrk: whole seconds
    a.cold_n = a.cold_n or (50 if a.quick else 200)
    a.groups = [g.strip() for g in a.only.split(",") if g.strip()] if a.only else list(GROUPS)
    bad = [g for g in a.groups if g not in GROUPS]
    if bad:
        ap.error(f"unknown group(s) {bad}; known: {', '.join(GROUPS)}")
    if not a.binary.is_file():
        alt = REPO / "build/release/authshim"
        if a.binary == REPO / "build/release/service/authshim" and alt.is_file():
            a.binary = alt
    a.binary = a.binary.resolve()
    if not (a.binary.is_file() and os.access(a.binary, os.X_OK)):
        ap.error(f"authshim binary {a.binary} not found or not executable "
                 "(build it: cmake --preset release && cmake --build build/release "
                 "--target authshim, or pass --binary)")
    return a


def check_tools(groups: list[str]):
    missing = [f"{name} ({path})" for name, path in REQUIRED_TOOLS.items()
               if not Path(path).exists()]
    if missing:
        raise SystemExit("bench: missing tools: " + ", ".join(missing) +
                         "\n  install them with: bash bench/run.sh (scripts/setup.sh, then "
                         "apt-get install wrk tinyproxy valgrind)")


def raise_nofile(want: int = 30000):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv=None) -> int:
    a = parse_args(argv)
    check_tools(a.groups)
    nofile = raise_nofile()
    if nofile < a.idle_connections + 1000 and "memory" in a.groups:
        raise SystemExit(f"bench: RLIMIT_NOFILE is {nofile}: too low for "
                         f"{a.idle_connections} idle connections (run as root or lower "
                         "--idle-connections)")
    if a.workdir is None:
        a.workdir = Path(tempfile.mkdtemp(prefix="authshim-bench-"))
    a.workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(a.workdir, 0o711)  # Squid (user proxy) must reach its folder
    os.environ["AUTHSHIM_BIN"] = str(a.binary)

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    sha, dirty = git_sha()
    started = dt.datetime.now()
    bench = Bench(a)
    say(f"authshim benchmark: binary {a.binary}, groups {','.join(a.groups)}, "
        f"repeat {a.repeat}, duration {a.duration:g}s, RLIMIT_NOFILE {nofile}")
    interrupted = False
    try:
        bench.run(a.groups)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping everything")
    except Exception as e:  # noqa: BLE001
        bench.results["errors"].append(f"fatal: {e}")
        say(f"!!! fatal: {e}")
        traceback.print_exc()
    finally:
        if bench.env is not None:
            bench.env.stop()
        hproc.kill_all_live()
        if not a.keep_files:
            shutil.rmtree(a.workdir / "nginx" / "www", ignore_errors=True)
    if interrupted:
        return 130

    bin_stat = a.binary.stat()
    meta = {
        "date": started.strftime("%Y-%m-%d %H:%M"), "git_sha": sha, "git_dirty": dirty,
        "binary": str(a.binary),
        "binary_mtime": dt.datetime.fromtimestamp(bin_stat.st_mtime).strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(), "versions": versions(a.binary),
        "options": {"repeat": a.repeat, "duration_s": a.duration, "cold_n": a.cold_n,
                    "idle_connections": a.idle_connections, "groups": a.groups,
                    "quick": a.quick},
        "idle_waits": bench.idle.waits, "idle_timeouts": bench.idle.timeouts,
        "runtime_s": round(time.monotonic() - T0, 1), "workdir": str(a.workdir),
        "tinyproxy_conf": "Debian defaults (Timeout 600, MaxClients 100, LogLevel Info) plus "
                          "Port/Listen/LogFile, Upstream and ConnectPort for the nginx ports; "
                          "no User/Group",
    }
    bench.results["meta"] = meta
    md = report.render(bench.results)
    a.results.mkdir(parents=True, exist_ok=True)
    stem = f"{started.strftime('%Y-%m-%d')}-{sha}{'-dirty' if dirty else ''}"
    for name in (f"{stem}.md", "latest.md"):
        (a.results / name).write_text(md)
    for name in (f"{stem}.json", "latest.json"):
        (a.results / name).write_text(json.dumps(bench.results, indent=1, default=str))
    say(f"results: {a.results / (stem + '.md')} (and latest.md, latest.json)")
    if "callgrind_dump" in bench.results["extras"]:
        say(f"callgrind dump: {bench.results['extras']['callgrind_dump']} "
            "(callgrind_annotate it)")
    say(f"done in {time.monotonic() - T0:.0f}s")
    print(md)
    return 1 if bench.results["errors"] or bench.results["invalid"] else 0


if __name__ == "__main__":
    sys.exit(main())
