#!/usr/bin/env python3
"""The suite-wide secrets check (CTest: `integration.aa_artifacts_reset` and, last,
`integration.zz_secrets_scan`; see README.md).

    scan_secrets.py --reset ARTIFACTS
        Removes ARTIFACTS and creates it empty (mode 0700). Runs before every integration
        module (CTest fixture), so the artifacts are those of the current ctest run.

    scan_secrets.py --artifacts ARTIFACTS --ctest-log-dir DIR [--ctest-log-dir DIR ...]
        1. Reads the needles the modules registered (ARTIFACTS/needles.txt) and checks that
           every module that ran left its session record (session.json) and its needles there.
        2. Canary: plants the needles (and those of a made-up credential) in a file and runs the
           same scan on it, with a tiny block size to exercise the block overlap; fails unless
           every planted needle is found.
        3. Scans every file under ARTIFACTS (but needles.txt) and CTest's test output log of the
           running ctest (DIR/LastTest*.log.tmp, written while ctest runs) for every needle.
    Failures name files and needle labels (kind and user name), never a needle."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import secrets  # noqa: E402
from harness.artifacts import NEEDLES, SESSION  # noqa: E402

CANARY_USER = "canary-user"
CANARY_PW = 'Canary pw: "q" \\ 100% grüße'
CANARY_REALM = "canary-realm"
TESTING_RE = re.compile(r"^\d+/\d+ Testing: integration\.(test_\w+)\s*$", re.M)


def reset(artifacts: Path) -> int:
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(mode=0o700, parents=True)
    os.chmod(artifacts, 0o700)
    print(f"artifacts reset: {artifacts}")
    return 0


def load_needles(artifacts: Path) -> dict[bytes, str]:
    """needle -> "module: label" (the first module that registered it)."""
    needles: dict[bytes, str] = {}
    path = artifacts / NEEDLES
    if not path.exists():
        return needles
    for line in path.read_text().splitlines():
        if line.strip():
            doc = json.loads(line)
            needles.setdefault(bytes.fromhex(doc["hex"]), f"{doc['module']}: {doc['label']}")
    return needles


def needles_per_module(artifacts: Path) -> dict[str, int]:
    counts: dict[str, set] = {}
    path = artifacts / NEEDLES
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                doc = json.loads(line)
                counts.setdefault(doc["module"], set()).add(doc["hex"])
    return {m: len(v) for m, v in counts.items()}


def ctest_logs(dirs: list[Path]) -> list[Path]:
    """The test output log of the ctest run in progress: LastTest.log.tmp (LastTest_<stamp>
    .log.tmp in dashboard mode), renamed to LastTest*.log when ctest ends. The newest one if
    a crashed run left another behind."""
    found = [p for d in dirs for p in d.glob("LastTest*.log.tmp") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime)[-1:]


def check_sessions(artifacts: Path, ran: set[str], problems: list[str]) -> dict[str, dict]:
    sessions = {}
    for p in sorted(artifacts.glob(f"*/{SESSION}")):
        doc = json.loads(p.read_text())
        sessions[doc["module"]] = doc
    for module in sorted(ran - set(sessions)):
        problems.append(f"integration.{module} ran in this ctest run but left no {SESSION} "
                        f"(the conftest hook did not run or AUTHSHIM_TEST_ARTIFACTS is not set)")
    have = needles_per_module(artifacts)
    for module, doc in sessions.items():
        if doc["needles"] and have.get(module, 0) < doc["needles"]:
            problems.append(f"{module} registered {doc['needles']} needle(s), {NEEDLES} holds "
                            f"{have.get(module, 0)} of them")
        if doc["instances_with_credentials"] and not doc["needles"]:
            problems.append(f"{module} started {doc['instances_with_credentials']} authshim(s) "
                            f"with credentials but registered no secret")
        if doc["credential_instances_not_trace"]:
            problems.append(f"{module}: authshim(s) with credentials not at log level trace: "
                            f"{doc['credential_instances_not_trace']}")
    return sessions


def canary_check(needles: dict[bytes, str], problems: list[str]):
    """The same scan on a file that holds every needle: each must be found (by default and
    by tiny blocks, which puts needles across block boundaries)."""
    planted = dict(needles)
    for kind, needle in secrets.needle_forms(CANARY_USER, CANARY_PW, CANARY_REALM).items():
        planted.setdefault(needle, f"canary: {kind}")
    ids = {needle: str(i) for i, needle in enumerate(planted)}  # one name per needle
    with tempfile.TemporaryDirectory(prefix="authshim-canary-") as d:
        path = Path(d) / "canary.log"
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            for needle in planted:
                f.write(b"2024-01-01T00:00:00Z trace planted [" + needle + b"] end\n")
        found = secrets.scan_file(path, ids) & secrets.scan_file(path, ids, block=7)
    missed = sorted(label for needle, label in planted.items() if ids[needle] not in found)
    if missed:
        problems.append(f"canary: the scan misses planted needle(s): {missed}")
    print(f"canary: {len(planted)} needle(s) planted ({len(planted) - len(needles)} of a made-up "
          f"credential), {len(planted) - len(missed)} found")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reset", type=Path, help="empty this artifacts dir and exit")
    ap.add_argument("--artifacts", type=Path)
    ap.add_argument("--ctest-log-dir", type=Path, action="append", default=[],
                    help="where ctest writes LastTest*.log.tmp (repeatable)")
    args = ap.parse_args()
    if args.reset:
        return reset(args.reset)
    if not args.artifacts:
        ap.error("--artifacts or --reset is required")

    problems: list[str] = []
    logs = ctest_logs(args.ctest_log_dir)
    if args.ctest_log_dir and not logs:
        problems.append(f"CTest's test output log (LastTest*.log.tmp) not found in "
                        f"{[str(d) for d in args.ctest_log_dir]}")
    ran = set()
    for log in logs:
        ran |= set(TESTING_RE.findall(log.read_text(errors="replace")))

    artifacts = args.artifacts
    sessions = check_sessions(artifacts, ran, problems) if artifacts.is_dir() else {}
    if ran and not artifacts.is_dir():
        problems.append(f"{artifacts} does not exist but modules ran: {sorted(ran)}")
    needles = load_needles(artifacts)
    canary_check(needles, problems)

    files = [p for p in sorted(artifacts.rglob("*")) if p.is_file() and p != artifacts / NEEDLES] \
        if artifacts.is_dir() else []
    hits = []
    total = 0
    for p in files + logs:
        total += p.stat().st_size
        hits += [(p, label) for label in sorted(secrets.scan_file(p, needles))]
    for p, label in hits:
        problems.append(f"secret in {p}: {label}")

    print(f"modules with a session record: {len(sessions)} ({sum(1 for s in sessions.values() if s['needles'])}"
          f" with secrets); modules this ctest run logged: {len(ran)}")
    print(f"needles: {len(needles)}; scanned {len(files)} artifact file(s) and "
          f"{[str(p) for p in logs]}: {total / 1e6:.1f} MB")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("no secret found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
