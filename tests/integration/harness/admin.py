"""The admin endpoint from the tests' side: requests with an optional bearer token (every answer
is kept with the CLI runs, so the suite-wide secrets scan reads it too), /status as JSON,
/metrics parsed by a strict reader of the Prometheus text exposition format 0.0.4, and
`promtool check metrics` (Debian package prometheus) as an independent check."""

from __future__ import annotations

import http.client
import json
import math
import re
import shutil
import subprocess

from .authshim import CLI_RUNS
from .util import LOOPBACK, slow_factor

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


class Answer:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, path: str, token: str | None = None,
            headers: dict | None = None, body: bytes = b"", timeout: float = 30.0) -> Answer:
    """One request to the admin endpoint on 127.0.0.1:`port` over a new connection."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout * slow_factor())
    try:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body or None, headers=h)
        res = conn.getresponse()
        answer = Answer(res.status, {k.lower(): v for k, v in res.getheaders()}, res.read())
    finally:
        conn.close()
    CLI_RUNS.append({"argv": ["admin", method, f"http://{LOOPBACK}:{port}{path}"],
                     "returncode": answer.status, "stdout": answer.body, "stderr": b""})
    return answer


def status(inst, token: str | None = None) -> dict:
    a = request(inst.admin_port, "GET", "/status", token)
    assert a.status == 200, (a.status, a.text)
    assert a.headers.get("content-type", "").startswith("application/json"), a.headers
    return a.json()


def metrics_text(inst, token: str | None = None) -> str:
    a = request(inst.admin_port, "GET", "/metrics", token)
    assert a.status == 200, (a.status, a.text)
    assert a.headers.get("content-type", "").startswith("text/plain; version=0.0.4"), a.headers
    return a.text


def reload(inst, token: str | None = None) -> Answer:
    return request(inst.admin_port, "POST", "/reload", token, timeout=60.0)


def upstream(doc: dict) -> dict:
    """The one upstream of a /status document."""
    assert len(doc["upstreams"]) == 1, doc
    return doc["upstreams"][0]


# --- Prometheus text exposition format 0.0.4, read strictly ----------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_SAMPLE_RE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL_RE = re.compile(rf'({_LABEL})="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise ValueError(f"not a number: {text!r}")
    return float(text)


def _labels(text: str | None) -> tuple:
    if not text:
        return ()
    out, pos = [], 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ValueError(f"bad label set at {text[pos:]!r}")
        value = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        out.append((m.group(1), value))
        pos = m.end()
    names = [n for n, _ in out]
    if len(names) != len(set(names)):
        raise ValueError(f"duplicate label in {text!r}")
    return tuple(sorted(out))


def parse_metrics(text: str) -> dict:
    """{(sample name, ((label, value), ...)): value}. Raises AssertionError naming the line for
    anything the format does not allow: a sample before its family's # TYPE, a family declared
    twice or interleaved with another, a sample name that does not belong to its family (for a
    histogram: _bucket with `le`, _sum, _count), a counter family not ending in _total, a
    duplicate series, bad label syntax, a non-numeric value, a missing final newline; for each
    histogram, non-decreasing buckets ending in le="+Inf" equal to _count."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    samples: dict = {}
    families: dict[str, str] = {}
    current: str | None = None
    seen_help: set[str] = set()
    for number, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {number}: {line!r}"
        assert line, f"{where}: empty line"
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(_NAME, name), where
            assert name not in seen_help, f"{where}: second HELP"
            seen_help.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4 and parts[3] in _TYPES, where
            name = parts[2]
            assert name not in families, f"{where}: family declared twice"
            families[name] = parts[3]
            if parts[3] == "counter":
                assert name.endswith("_total"), f"{where}: a counter's name ends in _total"
            current = name
            continue
        assert not line.startswith("#"), f"{where}: unexpected comment"
        m = _SAMPLE_RE.match(line)
        assert m, f"{where}: not a sample"
        name, labels_text, value_text = m.groups()
        try:
            labels = _labels(labels_text)
            value = _value(value_text)
        except ValueError as e:
            raise AssertionError(f"{where}: {e}") from None
        assert current is not None, f"{where}: sample before any # TYPE"
        kind = families[current]
        if kind == "histogram":
            allowed = {current + "_bucket", current + "_sum", current + "_count"}
            assert name in allowed, f"{where}: not part of histogram {current}"
            if name.endswith("_bucket"):
                assert "le" in dict(labels), f"{where}: bucket without le"
        else:
            assert name == current, f"{where}: sample of another family than {current}"
        if kind in ("counter", "histogram"):
            assert value >= 0 and not math.isnan(value), f"{where}: negative counter"
        key = (name, labels)
        assert key not in samples, f"{where}: duplicate series"
        samples[key] = value
    for family, kind in families.items():
        if kind != "histogram":
            continue
        series: dict = {}
        for (name, labels), value in samples.items():
            if name == family + "_bucket":
                rest = tuple(l for l in labels if l[0] != "le")
                series.setdefault(rest, []).append((_value(dict(labels)["le"]), value))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), f"{family}{rest}: buckets decrease: {buckets}"
            assert buckets[-1][0] == math.inf, f"{family}{rest}: no +Inf bucket"
            assert samples.get((family + "_count", rest)) == buckets[-1][1], \
                f"{family}{rest}: _count differs from the +Inf bucket"
            assert (family + "_sum", rest) in samples, f"{family}{rest}: no _sum"
    return samples


def metric(samples: dict, name: str, **labels) -> float:
    """The value of one series; KeyError naming what exists when it is missing."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        similar = [k for k in samples if k[0] == name]
        raise KeyError(f"no series {key}; series of {name}: {similar}")
    return samples[key]


def promtool_check(text: str) -> str | None:
    """`promtool check metrics` on `text` (lint included): None when it is content, else what
    it said. promtool comes with Debian's prometheus package (scripts/setup.sh installs it)."""
    if not shutil.which(PROMTOOL):
        return f"{PROMTOOL} is missing: install Debian's prometheus package (scripts/setup.sh)"
    cp = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                        timeout=60)
    if cp.returncode == 0:
        return None
    return f"promtool exit {cp.returncode}: {cp.stdout.decode()} {cp.stderr.decode()}".strip()
