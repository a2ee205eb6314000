"""Fixtures for the integration tests. Each test module runs as its own pytest session (one
CTest test each, two at a time), so "session" fixtures are per module: Squid, nginx and the
upload origin are started once per module that uses them. Everything binds 127.0.0.1 on
ports chosen at run time, everything lives under one tmp dir per session, and every process
started is stopped at the end, also on failure.

With AUTHSHIM_TEST_ARTIFACTS set (CTest), the session's authshim output and registered
secrets are handed to the suite-wide secrets scan at the end (harness/artifacts.py)."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import apache as _apache  # noqa: E402
from harness import artifacts as _artifacts  # noqa: E402
from harness import proc as _proc  # noqa: E402
from harness import stunnel as _stunnel  # noqa: E402
from harness.authshim import CLI_RUNS, STARTED, Authshim, make_config, started_since  # noqa: E402
from harness.fakes import (AnsweringUpstream, FullAcceptQueue, RecordingUpstream,  # noqa: E402
                           ScriptedUpstream)
from harness.nginx import Nginx  # noqa: E402
from harness.pyorigin import PyOrigin  # noqa: E402
from harness.secrets import REGISTRY  # noqa: E402
from harness.squid import Squid  # noqa: E402

BIG_SIZE = 50 * 1024 * 1024


def pytest_configure(config):
    config.addinivalue_line("markers", "release_only: memory/CPU assertions for release builds")


# Outcome counts of this session, for the artifacts' session.json.
_COUNTS = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0}
_ARTIFACTS: _artifacts.SessionArtifacts | None = None


def pytest_sessionstart(session):
    global _ARTIFACTS
    _ARTIFACTS = _artifacts.SessionArtifacts(session.config)
    _ARTIFACTS.start()


def pytest_runtest_logreport(report):
    if report.when == "call" or report.skipped:
        key = "passed" if report.passed else "failed" if report.failed else "skipped"
        _COUNTS[key] += 1
    elif report.failed:
        _COUNTS["errors"] += 1


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """After every fixture's teardown (trylast: also after the runner's final teardown when the
    session stopped early): the session's output and needles to the artifacts."""
    if _ARTIFACTS is not None:
        _ARTIFACTS.finish(STARTED, CLI_RUNS, REGISTRY, dict(_COUNTS), exitstatus)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("call", "teardown"):
        for inst in STARTED[-2:]:
            report.sections.append((f"authshim log: {inst.name} ({inst.dir})", inst.log_tail(6000)))
        for a in _apache.STARTED[-1:]:
            report.sections.append((f"Apache error.log ({a.dir})", a.error_log_tail(3000)))
            report.sections.append((f"Apache access.log ({a.dir})", a.access_log_tail(3000)))
        for st in _stunnel.STARTED[-1:]:
            report.sections.append((f"stunnel log ({st.dir})", st.log_tail(3000)))


@pytest.fixture(scope="session")
def tmp_root():
    base = os.environ.get("AUTHSHIM_TEST_TMPDIR") or None
    root = Path(tempfile.mkdtemp(prefix="authshim-it-", dir=base))
    os.chmod(root, 0o755)  # Squid runs as user proxy and must reach its folder
    try:
        yield root
    finally:
        _proc.kill_all_live()
        if _ARTIFACTS is not None:
            _ARTIFACTS.save_instances(STARTED)  # before the tmp dir goes
        if not os.environ.get("AUTHSHIM_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def nginx(tmp_root):
    n = Nginx(tmp_root).start()
    n.add_file("small.bin", 1024)
    n.add_file("medium.bin", 256 * 1024)
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="session")
def big_file(nginx):
    """50 MB of random bytes served by nginx as /big.bin (generated once per session)."""
    return nginx.add_file("big.bin", BIG_SIZE)


@pytest.fixture(scope="session")
def squid(tmp_root):
    s = Squid(tmp_root).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module", autouse=True)
def module_authshims():
    """A callable listing the authshim instances this module started (and no other's).
    Autouse, so that it counts from the module's first test, not from where it is asked for."""
    first = len(STARTED)
    return lambda: started_since(first)


@pytest.fixture(scope="module")
def secrets_dir(tmp_root):
    """`secrets/` in the tmp dir (mode 0700), for password files (`secrets.write_secret`)."""
    d = tmp_root / "secrets"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def pyorigin():
    o = PyOrigin().start()
    try:
        yield o
    finally:
        o.stop()


class AuthshimLauncher:
    """Starts authshim instances and checks each on teardown (SIGTERM -> exit 0 within
    timeouts.shutdown + 2 s, no sanitizer report)."""

    _counter = itertools.count(1)

    def __init__(self, tmp_root: Path):
        self.tmp_root = tmp_root
        self.instances: list[Authshim] = []

    def __call__(self, config: dict, name: str | None = None, env: dict | None = None,
                 files: dict | None = None, preexec=None) -> Authshim:
        """`files`: {file name: source path} copied into the instance folder (where the config
        is written) before the start, for paths the config gives relative to itself.
        `preexec`: run in the child before exec (e.g. to lower RLIMIT_NOFILE)."""
        name = f"{name or 'authshim'}-{next(self._counter)}"
        inst = Authshim(self.tmp_root, config, name, env=env, preexec=preexec)
        for file_name, source in (files or {}).items():
            shutil.copyfile(source, inst.dir / file_name)
        self.instances.append(inst)
        return inst.start()

    def finish(self):
        problems = []
        for inst in self.instances:
            problems += inst.stop_and_check()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def start_authshim(tmp_root):
    """Function-scoped: `start_authshim(config, name)` -> running Authshim."""
    launcher = AuthshimLauncher(tmp_root)
    try:
        yield launcher
    finally:
        launcher.finish()


@pytest.fixture(scope="module")
def start_authshim_module(tmp_root):
    launcher = AuthshimLauncher(tmp_root)
    try:
        yield launcher
    finally:
        launcher.finish()


@pytest.fixture(scope="module")
def proxy(start_authshim_module, squid, nginx):
    """One authshim for the module, forwarding to the session Squid; CONNECT allowed to 443
    and to the nginx TLS port."""
    cfg = make_config(squid.address, upstream_name="squid",
                      access={"connect_ports": [443, nginx.tls_port]})
    return start_authshim_module(cfg, "proxy")


class FakeFactory:
    def __init__(self):
        self.items = []

    def _add(self, item):
        self.items.append(item)
        return item.start()

    def recording(self, name="recording") -> RecordingUpstream:
        return self._add(RecordingUpstream(name))

    def answering(self, name="answering", **kw) -> AnsweringUpstream:
        return self._add(AnsweringUpstream(name, **kw))

    def scripted(self, script, name="scripted") -> ScriptedUpstream:
        return self._add(ScriptedUpstream(script, name))

    def full_accept_queue(self) -> FullAcceptQueue:
        return self._add(FullAcceptQueue())

    def stop(self):
        for item in reversed(self.items):
            item.stop()


@pytest.fixture
def fakes():
    f = FakeFactory()
    try:
        yield f
    finally:
        f.stop()


@pytest.fixture(scope="module")
def fakes_module():
    f = FakeFactory()
    try:
        yield f
    finally:
        f.stop()
