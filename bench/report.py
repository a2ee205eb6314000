"""Markdown report from the benchmark's raw results (the dict bench.py saves as JSON, so
`python3 bench/report.py bench/results/latest.json` regenerates the Markdown)."""

from __future__ import annotations

import json
import math
import sys

CANDS = [("A", "A (direct, pre-emptive Basic)"), ("authshim-basic", "authshim → Basic"),
         ("authshim-digest", "authshim → Digest"), ("squid-child", "Squid child"),
         ("tinyproxy", "tinyproxy")]
SHIMS = ["authshim-basic", "authshim-digest"]

# point key -> (kind, target value, target text). kind: "ratio>=", "ratio<=", "max"
TARGETS = {
    "1k@16": ("ratio>=", 0.90, "≥ 0.90 × A"),
    "1k@64": ("ratio>=", 0.90, "≥ 0.90 × A"),
    "64k@16": ("ratio>=", 0.95, "≥ 0.95 × A"),
    "5m@4": ("ratio>=", 0.95, "≥ 0.95 × A"),
    "tunnel": ("ratio>=", 0.95, "≥ 0.95 × A"),
    "cpu@1k@16": ("max", 20.0, "≤ 20 µs"),
    "cold": ("ratio<=", 1.15, "≤ 1.15 × A"),
    "tls": ("ratio<=", 1.10, "≤ 1.10 × A"),
    "digest407@1k@16": ("max", 20.0, "≤ 20"),
    "digest407@seq": ("max", 20.0, "≤ 20"),
    "rss_peak": ("max", 12.0, "≤ 12 MiB"),
    "rss_idle_conns": ("max", 64.0, "≤ 64 MiB"),
    "startup": ("max", 100.0, "≤ 100 ms"),
}
HEADLINE = ["1k@16", "1k@64", "64k@16", "5m@4", "tunnel", "cpu@1k@16", "cold", "tls",
            "digest407@1k@16", "digest407@seq", "rss_peak", "rss_idle_conns", "startup"]


def fmt(v, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if unit in ("req/s", "Ir/req"):
        return f"{v:,.0f}"
    if unit == "MB/s":
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    if unit == "ms":
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    return f"{v:.1f}" if v >= 1 or v == 0 else f"{v:.2f}"


def ratio(point: dict, cand: str):
    a = point["candidates"].get("A")
    c = point["candidates"].get(cand)
    if not a or not c or not a.get("median"):
        return None
    return c["median"] / a["median"]


def cell(point: dict, cand: str, with_ratio: bool = True) -> str:
    c = point["candidates"].get(cand)
    if not c:
        return "–"
    text = fmt(c["median"], point["unit"])
    r = ratio(point, cand) if with_ratio and cand != "A" else None
    if r is not None:
        text += f" ({r:.2f})"
    if any(r.get("no_keepalive") for r in c.get("runs", [])):
        text += " †"
    if c.get("noisy"):
        text += " ⚠noisy"
    if c.get("problems"):
        text += " **INVALID**"
    return text


def verdict(key: str, point: dict, cand: str) -> str:
    t = TARGETS.get(key)
    c = point["candidates"].get(cand)
    if not t or not c:
        return "–"
    kind, target, _ = t
    if kind == "max":
        v = c["median"]
        ok = v is not None and not math.isnan(v) and v <= target
    else:
        v = ratio(point, cand)
        if v is None:
            return "n/a"
        ok = v >= target if kind == "ratio>=" else v <= target
    if c.get("problems") or point["candidates"].get("A", {}).get("problems"):
        return "**INVALID**"
    return "PASS" if ok else "**MISS**"


def render(results: dict) -> str:
    m = results.get("meta", {})
    pts = results.get("points", {})
    mach, ver, opt = m.get("machine", {}), m.get("versions", {}), m.get("options", {})
    out = []
    w = out.append
    w(f"# authshim benchmark — {m.get('date', '?')}, {m.get('git_sha', '?')}"
      f"{' (uncommitted changes in the tree)' if m.get('git_dirty') else ''}\n")
    if results.get("errors") or results.get("invalid"):
        w("> **⚠ This run has problems — see \"Invalid runs and errors\" at the end. "
          "Numbers marked INVALID must not be used.**\n")
    w("## Machine and versions\n")
    w(f"- Machine: {mach.get('cpu', '?')}, {mach.get('cores', '?')} cores, "
      f"{mach.get('ram_gib', '?')} GiB RAM, kernel {mach.get('kernel', '?')}, {mach.get('os', '?')}")
    w(f"- authshim: `{ver.get('authshim', '?')}`, git {m.get('git_sha', '?')}"
      f"{'+dirty' if m.get('git_dirty') else ''}, binary `{m.get('binary', '?')}` "
      f"(built {m.get('binary_mtime', '?')})")
    for k in ("squid", "nginx", "tinyproxy", "wrk", "curl", "valgrind", "python"):
        w(f"- {k}: `{ver.get(k, '?')}`")
    w(f"- Options: {opt.get('repeat')} repeat(s), {opt.get('duration_s')} s per wrk run, "
      f"{opt.get('cold_n')} connections per cold measurement, groups "
      f"{', '.join(opt.get('groups', []))}{' (--quick)' if opt.get('quick') else ''}; "
      f"run took {m.get('runtime_s', '?')} s")
    w("")
    w("## Method\n")
    w("Everything runs on loopback on this one machine, started by `bench/bench.py`: nginx "
      "(single process, access log off, sendfile) serves 1 KB, 64 KB, 5 MiB and 100 MiB files "
      "over http and https; Squid 5 demands Basic (`basic_ncsa_auth`) or Digest "
      "(`digest_file_auth`, default nonce settings). Candidates: **A** — the client talks "
      "straight to Squid-Basic and sends `Proxy-Authorization: Basic` pre-emptively (the "
      "baseline; ratios are candidate ÷ A); **authshim → Basic / → Digest** with the config an "
      "admin gets (log level info, log to a file via `log.file`, as the service does; only "
      "upstream, credentials, scheme, `connect_ports` and `max_connections` 12000 set); "
      "**Squid child** (`cache_peer ... login=`, `never_direct allow all`, `cache deny all`, "
      "access log on as by default); **tinyproxy** (`Upstream http user:pass@`, "
      f"{m.get('tinyproxy_conf', '')}). Load: wrk 4.1 with keep-alive and absolute-form "
      "targets from a Lua script (`-t1`, `-t2` at 64 connections), a warm-up run per point and "
      "candidate, then the repeats interleaved across candidates; a run with any socket error, "
      "non-2xx response or short body is marked INVALID. Before each measured run the bench "
      "waits for an idle machine (< 15 % CPU over 0.5 s, at most 20 s). Cold latency, "
      "CONNECT + TLS and tunnel throughput use a small Python socket client (one new TCP "
      "connection per request, timed from connect() to the last body byte / to TLS handshake "
      "complete; the tunnel downloads 100 MiB over plain http inside a CONNECT tunnel, "
      "repeatedly). CPU per request is utime+stime of the candidate's process tree from "
      "/proc around each wrk run ÷ requests. Each value is the median of the repeats; "
      "⚠noisy means (max − min) / median > 10 %. Two cores are shared by client, candidate, "
      "Squid and nginx: compare ratios, not absolute numbers.")
    w("")
    idle_to = m.get("idle_timeouts", 0)
    if idle_to:
        w(f"> Machine never became idle (< 15 % CPU) before {idle_to} of "
          f"{m.get('idle_waits')} measured runs: those ran on a busy machine.\n")

    w("## Targets\n")
    w("Value (ratio to A). Verdicts are for authshim.\n")
    hdr = ["Metric", "Unit"] + [n for _, n in CANDS] + ["Target", "authshim Basic",
                                                        "authshim Digest"]
    w("| " + " | ".join(hdr) + " |")
    w("|" + "---|" * len(hdr))
    for key in HEADLINE:
        p = pts.get(key)
        if not p:
            continue
        row = [p["title"], p["unit"]] + [cell(p, k, TARGETS[key][0] != "max") for k, _ in CANDS]
        row += [TARGETS[key][2]] + [verdict(key, p, s) for s in SHIMS]
        w("| " + " | ".join(row) + " |")
    w("")

    wrk_keys = [k for k, p in pts.items() if p.get("group") == "load" and "connections" in p]
    if wrk_keys:
        w("## All wrk points\n")
        w("Median req/s (MB/s for 5 MiB) with the ratio to A, then p50 / p99 latency in ms "
          "(medians over the repeats).\n")
        hdr = ["Point"] + [n for _, n in CANDS]
        w("| " + " | ".join(hdr) + " |")
        w("|" + "---|" * len(hdr))
        for key in wrk_keys:
            p = pts[key]
            row = [f"{key} ({p['unit']})"]
            for k, _ in CANDS:
                c = p["candidates"].get(k)
                if not c:
                    row.append("–")
                    continue
                p50 = _median([r["wrk"]["p50_ms"] for r in c["runs"] if "wrk" in r])
                p99 = _median([r["wrk"]["p99_ms"] for r in c["runs"] if "wrk" in r])
                row.append(f"{cell(p, k)}<br>{p50:.2f} / {p99:.2f} ms")
            w("| " + " | ".join(row) + " |")
        w("")
        w("CPU per request of the candidate's own processes (µs, all threads and child "
          "processes), and in brackets Squid's (the upstream's) CPU per request in the same "
          "runs:\n")
        hdr = ["Point"] + [n for k, n in CANDS]
        w("| " + " | ".join(hdr) + " |")
        w("|" + "---|" * len(hdr))
        for key in wrk_keys:
            cp = pts.get(f"cpu@{key}", {"candidates": {}, "unit": "µs/req"})
            p = pts[key]
            row = [key]
            for k, _ in CANDS:
                c = cp["candidates"].get(k)
                up = p["candidates"].get(k)
                upv = _median([r.get("upstream_cpu_us_per_req") for r in up["runs"]
                               if r.get("upstream_cpu_us_per_req") is not None]) if up else None
                own = fmt(c["median"], "µs") if c else "–"
                row.append(f"{own} [{fmt(upv, 'µs') if upv is not None else '–'}]")
            w("| " + " | ".join(row) + " |")
        w("")

    others = [k for k in ("ir", "rss_idle", "rss_few", "rss_peak", "rss_idle_conns",
                          "startup", "digest407@1k@16", "digest407@seq") if k in pts]
    if others:
        w("## Other measurements\n")
        w("| Metric | Unit | " + " | ".join(n for _, n in CANDS) + " | Details |")
        w("|" + "---|" * (len(CANDS) + 3))
        for key in others:
            p = pts[key]
            details = _details(key, p)
            w("| " + " | ".join([p["title"], p["unit"]] +
                                [cell(p, k, False) for k, _ in CANDS] + [details]) + " |")
        w("")
    dump = results.get("extras", {}).get("callgrind_dump")
    if dump:
        w(f"Callgrind dump (1000 keep-alive 1 KB requests, after `callgrind_control -z`): "
          f"`{dump}` — `callgrind_annotate {dump} | head -60`.\n")

    notes = results.get("notes", {})
    if notes:
        w("## Notes\n")
        for text in notes.values():
            w(f"- † {text}")
        w("")
    w("## Invalid runs and errors\n")
    if not results.get("invalid") and not results.get("errors"):
        w("None: every run completed without socket errors or non-2xx responses.\n")
    for line in results.get("invalid", []):
        w(f"- **INVALID** {line}")
    for line in results.get("errors", []):
        w(f"- **ERROR** {line}")
    w("")
    return "\n".join(out)


def _median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return float("nan")
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _details(key: str, p: dict) -> str:
    parts = []
    for cand, c in p["candidates"].items():
        for r in c["runs"][:3]:
            if "n407" in r:
                parts.append(f"{r['n407']} × 407 of {r['squid_lines']} Squid lines")
            if "still_open" in r:
                parts.append(f"{r['answered']} answered, {r['still_open']} still open, "
                             f"opened in {r['opened_in_s']:.1f} s")
            if "all_ms" in r:
                parts.append(f"{cand}: min {min(r['all_ms']):.1f}, max {max(r['all_ms']):.1f} ms")
            if "total_ir" in r:
                parts.append(f"{r['total_ir']:,} Ir total, {r['ok']}/1000 ok")
    return "; ".join(parts)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS.json")
    with open(sys.argv[1]) as f:
        print(render(json.load(f)))
