"""Hands a session's authshim output to the suite-wide secrets scan
(tests/integration/scan_secrets.py, CTest test `integration.zz_secrets_scan`).

Only when `AUTHSHIM_TEST_ARTIFACTS` is set (CTest sets it; a module run by hand skips all of
this). At the end of the session (= one module) `<artifacts>/<module>/` receives:
- `<instance>/...`: every file of every authshim instance's folder (stdout, stderr, log files)
  except its input `authshim.json`, plus a log file configured outside that folder;
- `cli/NNN-<command>.out`: argv, exit status, stdout and stderr of every `run_cli` call
  (`authshim check`, `--version`, ...);
- `session.json`: what ran (test outcome counts, authshim instances, how many of them had
  credentials and at which log level, needles registered). The scan uses it to tell a module
  that registered nothing from one that did not run.
The module's needles are appended to `<artifacts>/needles.txt` (mode 0600, JSON lines with the
needle hex-encoded; test data, never printed)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

ENV = "AUTHSHIM_TEST_ARTIFACTS"
NEEDLES = "needles.txt"
SESSION = "session.json"


def root() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def session_name(config) -> str:
    """The module(s) of this pytest session: `test_auth_squid`."""
    names = sorted({Path(str(a).split("::")[0]).stem for a in config.args
                    if str(a).split("::")[0].endswith(".py")})
    return "+".join(names) or "session"


class SessionArtifacts:
    def __init__(self, config):
        self.root = root()
        self.name = session_name(config)
        self.dir = self.root / self.name if self.root else None
        self.saved: set[int] = set()
        self.files = 0

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    def start(self):
        """Empties this module's folder (a rerun without a reset replaces the old copy)."""
        if not self.enabled:
            return
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(mode=0o700)

    def _copy(self, source: Path, dest: Path):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        self.files += 1

    def save_instances(self, instances):
        """Copies the output of every instance not copied yet whose folder still exists (call
        before the session tmp dir is removed)."""
        if not self.enabled:
            return
        for inst in instances:
            if id(inst) in self.saved or not inst.dir.is_dir():
                continue
            self.saved.add(id(inst))
            dest = self.dir / inst.name
            for p in sorted(inst.dir.rglob("*")):
                if p.is_file() and not p.is_symlink() and p != inst.config_path:
                    self._copy(p, dest / p.relative_to(inst.dir))
            lf = inst.log_file()
            if lf is not None and lf.is_file() and inst.dir not in lf.parents:
                self._copy(lf, dest / "external-log" / lf.name)

    def finish(self, instances, cli_runs, registry, counts: dict, exitstatus):
        """CLI output, the needles and session.json (call last, in pytest_sessionfinish)."""
        if not self.enabled:
            return
        self.save_instances(instances)
        cli = self.dir / "cli"
        for i, run in enumerate(cli_runs, 1):
            command = next((a for a in run["argv"][1:] if not a.startswith("-")), "options")
            cli.mkdir(exist_ok=True)
            (cli / f"{i:03d}-{command}.out").write_bytes(
                b"argv: " + " ".join(run["argv"]).encode("utf-8", "replace") +
                f"\nexit: {run['returncode']}\n--- stdout ---\n".encode() + run["stdout"] +
                b"\n--- stderr ---\n" + run["stderr"])
            self.files += 1
        lines = "".join(json.dumps({"module": self.name, "label": label, "hex": needle.hex()}) + "\n"
                        for needle, label in registry.needles.items())
        if lines:
            fd = os.open(self.root / NEEDLES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.fchmod(fd, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)  # modules run two at a time
                os.write(fd, lines.encode())
            finally:
                os.close(fd)
        credentialed = [inst for inst in instances if inst.config.get("credentials")]
        doc = {
            "module": self.name,
            "exitstatus": int(exitstatus),
            "tests": counts,
            "authshim_instances": len(instances),
            "instances_with_credentials": len(credentialed),
            "credential_instances_not_trace": sorted(
                inst.name for inst in credentialed
                if inst.config.get("log", {}).get("level") != "trace"),
            "cli_runs": len(cli_runs),
            "needles": len(registry.needles),
            "files": self.files,
        }
        (self.dir / SESSION).write_text(json.dumps(doc, indent=2) + "\n")
