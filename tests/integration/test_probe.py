"""`authshim probe` against real Squid 5.7 instances: one request through the configured
upstream, first without credentials, then answering the 407 with the scheme authshim chooses;
the report lists every scheme offered, the scheme chosen, each round trip and an `outcome:`
line whose exit code is the process's (service/probe.hpp: 0 ok, 1 config, 2 usage,
3 unreachable, 4 rejected / none configured, 5 no common scheme, 6 timeout, 7 status >= 400).

What is checked here, each with the exit code and the key lines of the report:
- Basic (`basic_ncsa_auth`) and Digest (`digest_file_auth`) Squids, each helper behind
  `HelperLog`: GET to nginx and CONNECT to nginx's TLS port -> 0; a Squid offering Basic and
  Digest -> Digest chosen with the default `schemes`, Basic with `["basic"]`.
- Wrong passwords -> 4, and the credential reached Squid exactly once: one Basic check at the
  helper and one 407 logged with the user name (also with `lockout.max_rejections` 3: the probe
  never sends a rejected credential twice, whatever the proxy's lockout says); Digest: one 407
  with the user name.
- Refused port and a name that does not resolve -> 3; NTLM-only Squid (`ntlm_fake_auth`) and
  Digest-only Squid with `schemes: ["basic"]` -> 5 with the reason on the `offered:` line and
  no request carrying credentials in Squid's log; black-holed connect and a silent upstream
  (also silent only after its 407: sent once, "neither accepted nor rejected") -> 6 within
  the configured timeout; a fake that closes its connection right after a keep-alive 407 -> the
  answer goes once more on a new connection, and the upstream reads it exactly once; no
  credentials against an auth Squid -> 4; open Squid -> 0 ("asked for no credentials"), and a
  fake upstream shows that configured credentials are not sent when nobody asks; 404 / Squid
  error page after authentication -> 7; usage errors -> 2; bad configs (also a password file
  others can read) -> 1.
- No password (nor base64(user:password), nor a Digest HA1) in the stdout or stderr of any
  probe run: checked after every run and again at the end with a canary; every run goes
  through `run_cli`, so the suite-wide scan sees the output too.

Squid facts relied on (as in test_auth_squid.py): Basic `casesensitive on` keeps a user name
with a backslash; Squid asks the Basic helper again for a credential that failed last time, so
one helper line per wrong-password attempt; a good Basic credential is cached for
`credentialsttl` (1 second here), so good-password counts are "at least one". Squid 5.7 drops
the backslash from a Digest user name, so Digest users have none. Digest checks are not
counted at the helper (Squid caches the HA1): the 407s logged with a user name are. The
harness Squid config has no `SSL_ports` rule, so CONNECT to nginx's TLS port is allowed. An
NTLM-only Squid answers `Proxy-Authenticate: NTLM` (no realm)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import socket
import threading
import time

import pytest

from harness import secrets
from harness.authshim import SANITIZER_MARKERS, make_config, run_cli
from harness.secrets import write_secret
from harness.squid import (BASIC_NCSA_AUTH, CONN_LOG, DIGEST_FILE_AUTH, NTLM_FAKE_AUTH, Squid,
                           SquidAuth, SquidWindow, squid_available)
from harness.squid_auth import HelperLog, digest_ha1, write_digest_file, write_htpasswd
from harness.util import LOOPBACK, reserved_closed_port, slow_factor, wait_until

pytestmark = pytest.mark.skipif(not squid_available(), reason="squid is not installed")

REALM = "authshim-probe"
UPSTREAM = "probe-up"
CRED = "machine"
# Basic keeps the backslash (casesensitive on); the password has characters that JSON and
# %-escaping change, so the secrets check covers those forms as well.
BASIC_USER = "CORP\\svc-probe"
BASIC_PW = 'Probe-basic "q" 100%: grüße'
DIGEST_USER = "svc-probe"
DIGEST_PW = "Probe-digest-7Hq2c"
# Wrong-password tests: one user each, so that one test's helper counts do not mix with another's.
LOCK_BASIC = {"probe-lock-1": "Lock-right-1x", "probe-lock-3": "Lock-right-3x"}
LOCK_DIGEST_USER = "probe-lock-digest"
LOCK_DIGEST_PW = "Lock-right-dx"
WRONG_PW = "Probe-wrong-Xq81"
# Used only against upstreams that must never see it (NTLM, open, fakes).
UNSENT_USER = "svc-unsent"
UNSENT_PW = "Never-sent-pw-5tG"

ALL_PASSWORDS = [BASIC_PW, DIGEST_PW, *LOCK_BASIC.values(), LOCK_DIGEST_PW, WRONG_PW, UNSENT_PW]

# Every probe run of this module: (name, CompletedProcess), for the final secrets test.
RUNS: list = []
_COUNTER = itertools.count(1)


def _register(user: str, password: str, digest: bool = False):
    secrets.register(user, password, REALM if digest else None)


# ---------------------------------------------------------------------------------------------
# Fixtures: one Squid per auth setup, started once for the module


@pytest.fixture(scope="module")
def squids():
    """The module's Squids, stopped together at the end: a Squid takes about 2 s to stop
    (SIGTERM), so five one after the other would add 10 s to the module."""
    started: list[Squid] = []
    try:
        yield started
    finally:
        threads = [threading.Thread(target=s.stop) for s in started]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)


def _auth_squid(squids, tmp_root, name: str, auth_for) -> Squid:
    """A Squid with CONN_LOG; `auth_for(squid, dir)` writes the helper files into its folder
    and returns the SquidAuth list (and sets helper logs on the Squid)."""
    s = Squid(tmp_root, name=name, extra=CONN_LOG.format(dir=tmp_root / name))
    d = s.prepare_dir()
    s.auth = auth_for(s, d)
    squids.append(s)  # before start(): stop() copes with a Squid that never started
    return s.start()


def _basic_auth(s: Squid, d, users: dict) -> SquidAuth:
    htpasswd = write_htpasswd(d / "htpasswd", users, "-B")
    s.basic_log = HelperLog(d, "basic", [BASIC_NCSA_AUTH, htpasswd])
    return SquidAuth("basic", s.basic_log.program, realm=REALM,
                     options=["casesensitive on", "credentialsttl 1 second"])


def _digest_auth(s: Squid, d, users: dict) -> SquidAuth:
    passwords = write_digest_file(d / "digest-passwords", users, REALM)
    s.digest_log = HelperLog(d, "digest", [DIGEST_FILE_AUTH, passwords])
    return SquidAuth("digest", s.digest_log.program, realm=REALM,
                     options=["nonce_max_count 50", "nonce_max_duration 30 minutes"])


@pytest.fixture(scope="module")
def squid_basic(squids, tmp_root):
    return _auth_squid(squids, tmp_root, "squid-probe-basic",
                       lambda s, d: [_basic_auth(s, d, {BASIC_USER: BASIC_PW, **LOCK_BASIC})])


@pytest.fixture(scope="module")
def squid_digest(squids, tmp_root):
    users = {DIGEST_USER: DIGEST_PW, LOCK_DIGEST_USER: LOCK_DIGEST_PW}
    return _auth_squid(squids, tmp_root, "squid-probe-digest",
                       lambda s, d: [_digest_auth(s, d, users)])


@pytest.fixture(scope="module")
def squid_both(squids, tmp_root):
    """Offers Basic first, then Digest (Squid sends one Proxy-Authenticate per scheme, in
    auth_param order)."""
    users = {DIGEST_USER: DIGEST_PW}
    return _auth_squid(squids, tmp_root, "squid-probe-both",
                       lambda s, d: [_basic_auth(s, d, users), _digest_auth(s, d, users)])


@pytest.fixture(scope="module")
def squid_ntlm(squids, tmp_root):
    return _auth_squid(squids, tmp_root, "squid-probe-ntlm",
                       lambda s, d: [SquidAuth("ntlm", [NTLM_FAKE_AUTH])])


@pytest.fixture(scope="module")
def squid_open(squids, tmp_root):
    s = Squid(tmp_root, name="squid-probe-open")
    squids.append(s)
    return s.start()


# ---------------------------------------------------------------------------------------------
# Running the probe


def probe_config(upstream: str, user: str | None = None, password: dict | None = None,
                 schemes: list | None = None, **sections) -> dict:
    """A config for `upstream`; with `user`, credentials `machine` on it (`password` a secret
    source). Log level trace: nothing the config loader logs may hold a secret either."""
    up = {"name": UPSTREAM, "address": upstream}
    extra = {}
    if user is not None:
        up["credentials"] = CRED
        up["schemes"] = schemes or ["digest", "basic"]
        extra["credentials"] = {CRED: {"username": user, "password": password}}
    return make_config(upstream, upstream_name=UPSTREAM, upstreams=[up],
                       log={"level": "trace"}, **extra, **sections)


class Probe:
    """One finished `authshim probe` run: exit code, output, wall time."""

    def __init__(self, cp, elapsed: float):
        self.cp = cp
        self.code = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr
        self.elapsed = elapsed
        self.lines = cp.stdout.splitlines()

    def describe(self) -> str:
        return (f"exit {self.code} after {self.elapsed:.2f}s\n--- stdout ---\n{self.out}"
                f"--- stderr ---\n{self.err}")

    def has(self, line: str) -> bool:
        return line in self.lines

    def match(self, pattern: str) -> list:
        return [l for l in self.lines if re.fullmatch(pattern, l)]

    def round_trips(self) -> list:
        return [l for l in self.lines if l.startswith("round trip ")]

    def outcome(self) -> str:
        found = [l for l in self.lines if l.startswith("outcome: ")]
        assert len(found) == 1 and self.lines[-1] == found[0], \
            f"expected one outcome line, last:\n{self.describe()}"
        return found[0]


def check_clean(name: str, cp):
    """No password in the output of a run (literal or in any registered form), and no
    sanitizer report."""
    text = cp.stdout + cp.stderr
    literal = [i for i, pw in enumerate(ALL_PASSWORDS) if pw in text]
    assert not literal, f"{name}: a test password (index {literal}) appears in the output"
    found = secrets.REGISTRY.find(text)
    assert not found, f"{name}: secrets in the probe output: {sorted(found)}"
    markers = [m for m in SANITIZER_MARKERS if m in text]
    assert not markers, f"{name}: sanitizer report: {markers}\n{cp.stderr[-3000:]}"


def run_probe(tmp_root, name: str, config: dict | None, args: list, env: dict | None = None,
              timeout: float = 30.0) -> Probe:
    """Writes `config` (when given) to its own file and runs `authshim probe --config FILE
    ARGS` through run_cli (the suite-wide scan sees the output)."""
    argv = ["probe"]
    if config is not None:
        d = tmp_root / "probe-configs"
        d.mkdir(exist_ok=True)
        path = d / f"{next(_COUNTER):02d}-{name}.json"
        path.write_text(json.dumps(config, indent=2))
        argv += ["--config", path]
    t0 = time.monotonic()
    cp = run_cli(argv + list(args), timeout=timeout, env=env)
    elapsed = time.monotonic() - t0
    RUNS.append((name, cp))
    check_clean(name, cp)
    return Probe(cp, elapsed)


def file_password(secrets_dir, name: str, password: str) -> dict:
    return {"file": str(write_secret(secrets_dir / f"probe-{name}.txt", password))}


def expect_outcome(p: Probe, code: int, label: str, text: str):
    """Exit `code`, and the last line is exactly `outcome: LABEL - TEXT (exit CODE)`."""
    assert p.code == code, p.describe()
    assert p.outcome() == f"outcome: {label} - {text} (exit {code})", p.describe()


def rt(n: int, method: str, creds: str | None, status: str) -> str:
    """A regex for a `round trip N:` line that got an answer."""
    with_ = f"with {creds} credentials" if creds else "without credentials"
    return (rf"round trip {n}: {method} {with_} -> {re.escape(status)} in [\d.]+ ms"
            rf" \((new connection, connect [\d.]+ ms|reused connection)\)")


def _wait_checks(log: HelperLog, user: str, password: str, at_least: int) -> int:
    """The helper's Basic check count once it reached `at_least` (or 5 s passed), after a
    short wait for anything late."""
    try:
        wait_until(lambda: log.basic_checks(user, password) >= at_least, 5 * slow_factor(),
                   what="helper checks")
    except TimeoutError:
        pass
    time.sleep(0.3)
    return log.basic_checks(user, password)


def _who(user: str) -> str:
    return f'"{CRED}" (user {user})'


# ---------------------------------------------------------------------------------------------
# 1, 2: Basic and Digest Squids accept the credentials


def test_basic_get_ok(tmp_root, squid_basic, nginx, secrets_dir):
    _register(BASIC_USER, BASIC_PW)
    window = SquidWindow(squid_basic)
    url = nginx.url("/small.bin")
    cfg = probe_config(squid_basic.address, BASIC_USER,
                       file_password(secrets_dir, "basic", BASIC_PW))
    p = run_probe(tmp_root, "basic-get", cfg, ["--url", url])
    expect_outcome(p, 0, "OK", f"the upstream accepted the credentials {_who(BASIC_USER)} with "
                               f"Basic; final status 200 OK")
    assert p.lines[0] == f"probe: GET {url}", p.describe()
    assert p.has(f'credentials: "{CRED}", user {BASIC_USER}; schemes: digest, basic'), p.describe()
    assert p.match(r"  offered: .*") == [f'  offered: Basic realm="{REALM}"'], p.describe()
    assert p.has("  chosen: Basic, the first of schemes [digest, basic] the upstream offers"), \
        p.describe()
    trips = p.round_trips()
    assert len(trips) == 2, p.describe()
    assert re.fullmatch(rt(1, "GET", None, "407 Proxy Authentication Required"), trips[0]), trips
    assert re.fullmatch(rt(2, "GET", "Basic", "200 OK"), trips[1]), trips

    # Squid: one 407 without credentials, then the 200 for the user.
    window.settle(2)
    got = [(e[1], e[2], e[4]) for e in window.entries()]
    assert got == [("TCP_DENIED/407", "GET", "-"), ("TCP_MISS/200", "GET", BASIC_USER)], got
    assert squid_basic.basic_log.basic_checks(BASIC_USER, BASIC_PW) >= 1


def test_basic_connect_tunnel_ok(tmp_root, squid_basic, nginx, secrets_dir):
    """CONNECT to nginx's TLS port (the harness Squid allows CONNECT to any port)."""
    _register(BASIC_USER, BASIC_PW)
    window = SquidWindow(squid_basic)
    target = f"localhost:{nginx.tls_port}"
    cfg = probe_config(squid_basic.address, BASIC_USER,
                       file_password(secrets_dir, "basic", BASIC_PW))
    p = run_probe(tmp_root, "basic-connect", cfg, ["--connect", target])
    expect_outcome(p, 0, "OK", f"the upstream accepted the credentials {_who(BASIC_USER)} with "
                               f"Basic; tunnel to {target} established (200 Connection "
                               f"established), then closed by the probe")
    assert p.lines[0] == f"probe: CONNECT {target}", p.describe()
    assert p.match(r"  offered: .*") == [f'  offered: Basic realm="{REALM}"'], p.describe()
    trips = p.round_trips()
    assert len(trips) == 2, p.describe()
    assert re.fullmatch(rt(1, "CONNECT", None, "407 Proxy Authentication Required"),
                        trips[0]), trips
    assert re.fullmatch(rt(2, "CONNECT", "Basic", "200 Connection established"), trips[1]), trips
    # Squid logs the tunnel when it ends: the probe closed it.
    window.settle(2)
    got = [(e[1], e[2], e[3], e[4]) for e in window.entries()]
    assert got == [("TCP_DENIED/407", "CONNECT", target, "-"),
                   ("TCP_TUNNEL/200", "CONNECT", target, BASIC_USER)], got


def test_digest_get_ok(tmp_root, squid_digest, nginx):
    """Password from an environment variable."""
    _register(DIGEST_USER, DIGEST_PW, digest=True)
    window = SquidWindow(squid_digest)
    cfg = probe_config(squid_digest.address, DIGEST_USER, {"env": "AUTHSHIM_TEST_PROBE_PW"})
    p = run_probe(tmp_root, "digest-get", cfg, ["--url", nginx.url("/small.bin")],
                  env={"AUTHSHIM_TEST_PROBE_PW": DIGEST_PW})
    expect_outcome(p, 0, "OK", f"the upstream accepted the credentials {_who(DIGEST_USER)} with "
                               f"Digest; final status 200 OK")
    offered = p.match(r"  offered: .*")
    assert len(offered) == 1 and offered[0].startswith(f'  offered: Digest realm="{REALM}"'), \
        p.describe()
    # Squid 5.7's challenge: realm, qop, stale, and a 32-character nonce of which only the
    # first 8 characters are shown; no "[...]" reason (Digest is usable).
    assert re.fullmatch(rf'  offered: Digest realm="{REALM}", qop="auth", stale="false", '
                        r'nonce="[0-9a-f]{8}\.\.\." \(32 characters\)', offered[0]), offered[0]
    assert p.has("  chosen: Digest (MD5), the first of schemes [digest, basic] the upstream "
                 "offers"), p.describe()
    trips = p.round_trips()
    assert len(trips) == 2, p.describe()
    assert re.fullmatch(rt(1, "GET", None, "407 Proxy Authentication Required"), trips[0]), trips
    assert re.fullmatch(rt(2, "GET", "Digest", "200 OK"), trips[1]), trips
    window.settle(2)
    got = [(e[1], e[4]) for e in window.entries()]
    assert got == [("TCP_DENIED/407", "-"), ("TCP_MISS/200", DIGEST_USER)], got


def test_digest_connect_tunnel_ok(tmp_root, squid_digest, nginx, secrets_dir):
    _register(DIGEST_USER, DIGEST_PW, digest=True)
    window = SquidWindow(squid_digest)
    target = f"localhost:{nginx.tls_port}"
    cfg = probe_config(squid_digest.address, DIGEST_USER,
                       file_password(secrets_dir, "digest", DIGEST_PW))
    p = run_probe(tmp_root, "digest-connect", cfg, ["--connect", target])
    expect_outcome(p, 0, "OK", f"the upstream accepted the credentials {_who(DIGEST_USER)} with "
                               f"Digest; tunnel to {target} established (200 Connection "
                               f"established), then closed by the probe")
    assert re.fullmatch(rt(2, "CONNECT", "Digest", "200 Connection established"),
                        p.round_trips()[-1]), p.describe()
    window.settle(2)
    got = [(e[1], e[2], e[4]) for e in window.entries()]
    assert got == [("TCP_DENIED/407", "CONNECT", "-"),
                   ("TCP_TUNNEL/200", "CONNECT", DIGEST_USER)], got


@pytest.mark.parametrize("schemes, chosen", [(["digest", "basic"], "Digest"),
                                             (["basic", "digest"], "Basic"),
                                             (["basic"], "Basic")])
def test_both_offered_first_of_schemes_chosen(tmp_root, squid_both, nginx, secrets_dir,
                                              schemes, chosen):
    """Squid offers Basic, then Digest: every offer is listed, and the first of `schemes`
    that the upstream offers is answered (not the upstream's order)."""
    _register(DIGEST_USER, DIGEST_PW, digest=True)
    window = SquidWindow(squid_both)
    cfg = probe_config(squid_both.address, DIGEST_USER,
                       file_password(secrets_dir, "both", DIGEST_PW), schemes=schemes)
    p = run_probe(tmp_root, f"both-{'-'.join(schemes)}", cfg, ["--url", nginx.url("/small.bin")])
    expect_outcome(p, 0, "OK", f"the upstream accepted the credentials {_who(DIGEST_USER)} with "
                               f"{chosen}; final status 200 OK")
    offered = p.match(r"  offered: .*")
    assert len(offered) == 2, p.describe()
    assert offered[0] == f'  offered: Basic realm="{REALM}"', offered
    assert offered[1].startswith(f'  offered: Digest realm="{REALM}"'), offered
    # Digest outside `schemes` is marked so.
    assert offered[1].endswith("[not in the upstream's schemes]") == ("digest" not in schemes), \
        offered
    algorithm = " (MD5)" if chosen == "Digest" else ""
    assert p.has(f"  chosen: {chosen}{algorithm}, the first of schemes [{', '.join(schemes)}] "
                 f"the upstream offers"), p.describe()
    assert re.fullmatch(rt(2, "GET", chosen, "200 OK"), p.round_trips()[-1]), p.describe()
    window.settle(2)
    got = [(e[1], e[4]) for e in window.entries()]
    assert got == [("TCP_DENIED/407", "-"), ("TCP_MISS/200", DIGEST_USER)], got


# ---------------------------------------------------------------------------------------------
# 3: wrong passwords reach Squid exactly once


@pytest.mark.parametrize("user, max_rejections", [("probe-lock-1", 1), ("probe-lock-3", 3)])
def test_basic_wrong_password_sent_once(tmp_root, squid_basic, nginx, secrets_dir, user,
                                        max_rejections):
    """Exit 4 and one helper check with the wrong password; also with lockout.max_rejections 3
    (the probe never resends a rejected credential, whatever the proxy would do)."""
    _register(user, WRONG_PW)
    log = squid_basic.basic_log
    assert log.basic_checks(user) == 0, "the user was tried before this test"
    window = SquidWindow(squid_basic)
    cfg = probe_config(squid_basic.address, user,
                       file_password(secrets_dir, f"wrong-{user}", WRONG_PW),
                       lockout={"max_rejections": max_rejections, "retry_after": None})
    p = run_probe(tmp_root, f"basic-wrong-{max_rejections}", cfg,
                  ["--url", nginx.url("/small.bin")])
    expect_outcome(p, 4, "REJECTED",
                   f"the upstream rejected the credentials {_who(user)} (answered with Basic). "
                   f"They were sent once and are not sent again: check the user name and "
                   f"password (authshim run would pause them after lockout.max_rejections = "
                   f"{max_rejections})")
    trips = p.round_trips()
    assert len(trips) == 2, p.describe()
    assert re.fullmatch(rt(2, "GET", "Basic", "407 Proxy Authentication Required"), trips[1]), trips
    # The 407 answering the credentials is shown with its challenge too.
    assert p.match(r"  offered: .*") == [f'  offered: Basic realm="{REALM}"'] * 2, p.describe()

    checks = _wait_checks(log, user, WRONG_PW, 1)
    window.settle(2)
    assert checks == 1, f"expected exactly 1 credential check with the wrong password, got {checks}"
    assert log.basic_checks(user) == 1, "other checks for the user"
    assert window.count_407_with_user() == 1, window.entries()
    assert window.count_407() == 2, window.entries()
    assert [e[4] for e in window.entries()] == ["-", user], window.entries()


def test_digest_wrong_password_sent_once(tmp_root, squid_digest, nginx, secrets_dir):
    _register(LOCK_DIGEST_USER, WRONG_PW, digest=True)
    window = SquidWindow(squid_digest)
    cfg = probe_config(squid_digest.address, LOCK_DIGEST_USER,
                       file_password(secrets_dir, "wrong-digest", WRONG_PW))
    p = run_probe(tmp_root, "digest-wrong", cfg, ["--url", nginx.url("/small.bin")])
    expect_outcome(p, 4, "REJECTED",
                   f"the upstream rejected the credentials {_who(LOCK_DIGEST_USER)} (answered "
                   f"with Digest). They were sent once and are not sent again: check the user "
                   f"name and password (authshim run would pause them after "
                   f"lockout.max_rejections = 1)")
    trips = p.round_trips()
    assert len(trips) == 2, p.describe()
    assert re.fullmatch(rt(2, "GET", "Digest", "407 Proxy Authentication Required"),
                        trips[1]), trips
    assert "stale nonce" not in p.out, p.describe()
    window.settle(2)
    assert window.count_407_with_user() == 1, window.entries()
    assert window.count_407() == 2, window.entries()
    assert [e[4] for e in window.entries()] == ["-", LOCK_DIGEST_USER], window.entries()


# ---------------------------------------------------------------------------------------------
# 4: unreachable upstream


def test_unreachable_refused_port(tmp_root, secrets_dir):
    _register(UNSENT_USER, UNSENT_PW)
    closed = reserved_closed_port()
    try:
        address = f"{LOOPBACK}:{closed.getsockname()[1]}"
        cfg = probe_config(address, UNSENT_USER, file_password(secrets_dir, "unsent", UNSENT_PW))
        p = run_probe(tmp_root, "refused", cfg, ["--url", "http://origin.test/crl/x.crl"])
    finally:
        closed.close()
    expect_outcome(p, 3, "UNREACHABLE", f"cannot connect to {address}: Connection refused")
    trips = p.round_trips()
    assert len(trips) == 1 and re.fullmatch(
        r"round trip 1: GET without credentials -> no connection \(new connection, connect "
        r"[\d.]+ ms\)", trips[0]), p.describe()
    assert p.elapsed < 5 * slow_factor(), p.describe()


def test_unreachable_name_does_not_resolve(tmp_root):
    cfg = probe_config("nonexistent.invalid:3128")
    p = run_probe(tmp_root, "no-dns", cfg, ["--url", "http://origin.test/x"])
    expect_outcome(p, 3, "UNREACHABLE", "the upstream's name nonexistent.invalid does not resolve")
    assert len(p.round_trips()) == 1 and "-> no connection" in p.round_trips()[0], p.describe()


# ---------------------------------------------------------------------------------------------
# 5: no common scheme


def test_ntlm_only_no_common_scheme(tmp_root, squid_ntlm, nginx, secrets_dir):
    """Squid offers only NTLM: exit 5, the offer listed as unsupported, no credentials sent."""
    _register(UNSENT_USER, UNSENT_PW)
    window = SquidWindow(squid_ntlm)
    cfg = probe_config(squid_ntlm.address, UNSENT_USER,
                       file_password(secrets_dir, "unsent", UNSENT_PW))
    p = run_probe(tmp_root, "ntlm", cfg, ["--url", nginx.url("/small.bin")])
    expect_outcome(p, 5, "NO COMMON SCHEME", "no scheme the upstream offers can be answered: "
                                             "offered: ntlm; allowed: digest, basic")
    assert p.match(r"  offered: .*") == ["  offered: NTLM [not supported by authshim]"], \
        p.describe()
    assert p.has("  chosen: none"), p.describe()
    trips = p.round_trips()
    assert len(trips) == 1, p.describe()
    assert re.fullmatch(rt(1, "GET", None, "407 Proxy Authentication Required"), trips[0]), trips
    window.settle(1)
    assert window.count_407() == 1 and window.count_407_with_user() == 0, window.entries()
    assert [e[4] for e in window.entries()] == ["-"], window.entries()


def test_digest_only_but_schemes_basic(tmp_root, squid_digest, nginx, secrets_dir):
    """Digest offered, `schemes: ["basic"]`: exit 5, Digest marked as not in schemes, nothing
    sent."""
    _register(DIGEST_USER, DIGEST_PW, digest=True)
    window = SquidWindow(squid_digest)
    cfg = probe_config(squid_digest.address, DIGEST_USER,
                       file_password(secrets_dir, "digest", DIGEST_PW), schemes=["basic"])
    p = run_probe(tmp_root, "digest-schemes-basic", cfg, ["--url", nginx.url("/small.bin")])
    expect_outcome(p, 5, "NO COMMON SCHEME", "no scheme the upstream offers can be answered: "
                                             "offered: digest; allowed: basic")
    offered = p.match(r"  offered: .*")
    assert len(offered) == 1 and offered[0].startswith("  offered: Digest ") \
        and offered[0].endswith(" [not in the upstream's schemes]"), p.describe()
    assert p.has("  chosen: none") and len(p.round_trips()) == 1, p.describe()
    window.settle(1)
    assert window.count_407() == 1 and window.count_407_with_user() == 0, window.entries()


# ---------------------------------------------------------------------------------------------
# 6: timeouts


def test_timeout_connect_black_hole(tmp_root, fakes):
    queue = fakes.full_accept_queue()
    assert queue.connect_hangs(0.3), "fixture: the accept queue is not full"
    cfg = probe_config(queue.address, timeouts={"connect": "1s", "upstream_response": "10s"})
    p = run_probe(tmp_root, "black-hole", cfg, ["--url", "http://origin.test/x"], timeout=20)
    expect_outcome(p, 6, "TIMEOUT",
                   f"no connection to {queue.address} within timeouts.connect (1s)")
    assert "timeouts: connect 1s, upstream_response 10s" in p.out, p.describe()
    trips = p.round_trips()
    m = re.fullmatch(r"round trip 1: GET without credentials -> no connection \(new connection, "
                     r"connect (\d+) ms\)", trips[0]) if len(trips) == 1 else None
    assert m and 990 <= int(m.group(1)) < 1000 + 500 * slow_factor(), p.describe()
    assert 0.9 <= p.elapsed < 1.0 + 2.5 * slow_factor(), p.describe()


def test_timeout_silent_upstream(tmp_root, fakes, secrets_dir):
    """Accepts and reads, never answers: exit 6 after timeouts.upstream_response; the first
    request carries no credentials."""
    _register(UNSENT_USER, UNSENT_PW)
    silent = fakes.recording("silent")
    cfg = probe_config(silent.address, UNSENT_USER, file_password(secrets_dir, "unsent", UNSENT_PW),
                       timeouts={"connect": "5s", "upstream_response": "1s"})
    p = run_probe(tmp_root, "silent", cfg, ["--url", "http://origin.test/crl/x.crl"], timeout=20)
    expect_outcome(p, 6, "TIMEOUT", f"the upstream {silent.address} sent no response headers "
                                    f"within timeouts.upstream_response (1s)")
    trips = p.round_trips()
    m = re.fullmatch(r"round trip 1: GET without credentials -> no answer after (\d+) ms "
                     r"\(new connection, connect [\d.]+ ms\)",
                     trips[0]) if len(trips) == 1 else None
    assert m and 990 <= int(m.group(1)) < 1000 + 500 * slow_factor(), p.describe()
    assert 0.9 <= p.elapsed < 1.0 + 2.5 * slow_factor(), p.describe()
    got = silent.received()
    assert got.startswith(b"GET http://origin.test/crl/x.crl HTTP/1.1\r\nHost: origin.test\r\n"), \
        got[:200]
    assert b"proxy-authorization" not in got.lower(), "credentials sent unasked"
    assert silent.connections == 1


class ChallengeThenSilent:
    """A fake upstream: the first request on each connection gets a Basic 407 (keep-alive);
    later requests are read and never answered. Records whether each request carried a
    Proxy-Authorization (never its value).

    `close_after_challenge`: the connection is closed right after the 407 (despite its
    keep-alive), and a request that carries credentials as the first one of a connection gets
    a 200: the probe must send the credentials again on a new connection, since the closed one
    never answered them."""

    CHALLENGE = (b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                 b'Proxy-Authenticate: Basic realm="' + REALM.encode() + b'"\r\n'
                 b"Content-Length: 0\r\nConnection: keep-alive\r\n\r\n")

    OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n"

    def __init__(self, close_after_challenge: bool = False):
        self.close_after_challenge = close_after_challenge
        self.listener = socket.create_server((LOOPBACK, 0))
        self.address = f"{LOOPBACK}:{self.listener.getsockname()[1]}"
        self.with_credentials: list[bool] = []
        self.conns: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn):
        buf, answered = b"", False
        conn.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, _, buf = buf.partition(b"\r\n\r\n")
                credentials = b"\r\nproxy-authorization:" in head.lower()
                self.with_credentials.append(credentials)
                if answered:
                    continue  # never answered
                answered = True
                if self.close_after_challenge and credentials:
                    conn.sendall(self.OK)
                    continue
                conn.sendall(self.CHALLENGE)
                if self.close_after_challenge:
                    conn.close()
                    return

    def stop(self):
        self.stopped.set()
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.listener.close()


def test_timeout_after_challenge_neither_accepted_nor_rejected(tmp_root, secrets_dir):
    """407, then no answer to the credentials: exit 6, said to be neither accepted nor
    rejected, and the credentials were sent exactly once (no resend after the timeout)."""
    _register(UNSENT_USER, UNSENT_PW)
    fake = ChallengeThenSilent()
    try:
        cfg = probe_config(fake.address, UNSENT_USER,
                           file_password(secrets_dir, "unsent", UNSENT_PW),
                           timeouts={"upstream_response": "1s"})
        p = run_probe(tmp_root, "silent-after-407", cfg, ["--url", "http://origin.test/x"],
                      timeout=20)
        time.sleep(0.2)
        seen = list(fake.with_credentials)
    finally:
        fake.stop()
    expect_outcome(p, 6, "TIMEOUT", f"the upstream {fake.address} sent no response headers "
                                    f"within timeouts.upstream_response (1s); the credentials "
                                    f"were neither accepted nor rejected")
    trips = p.round_trips()
    assert len(trips) == 2, p.describe()
    assert re.fullmatch(r"round trip 2: GET with Basic credentials -> no answer after [\d.]+ ms "
                        r"\(reused connection\)", trips[1]), p.describe()
    assert seen == [False, True], f"requests (carried credentials?): {seen}"


def test_kept_connection_closed_after_challenge(tmp_root, secrets_dir):
    """The upstream closes the connection right after its keep-alive 407: the answer went
    nowhere, so it is sent once more on a new connection (said so in the report) and accepted;
    the upstream read the credentials exactly once."""
    _register(UNSENT_USER, UNSENT_PW)
    fake = ChallengeThenSilent(close_after_challenge=True)
    try:
        cfg = probe_config(fake.address, UNSENT_USER,
                           file_password(secrets_dir, "unsent", UNSENT_PW),
                           timeouts={"upstream_response": "3s"})
        p = run_probe(tmp_root, "closed-after-407", cfg, ["--url", "http://origin.test/x"])
        time.sleep(0.2)
        seen = list(fake.with_credentials)
    finally:
        fake.stop()
    expect_outcome(p, 0, "OK", f"the upstream accepted the credentials {_who(UNSENT_USER)} with "
                               f"Basic; final status 200 OK")
    trips = p.round_trips()
    assert len(trips) == 2, p.describe()
    assert re.fullmatch(rt(2, "GET", "Basic", "200 OK"), trips[1]) and \
        "(new connection," in trips[1], p.describe()
    assert p.has("  the kept connection had been closed by the upstream: sent again on a new "
                 "one"), p.describe()
    assert seen == [False, True], f"requests read by the upstream (carried credentials?): {seen}"


# ---------------------------------------------------------------------------------------------
# 7: no credentials configured; open upstream; error status after authentication


def test_no_credentials_configured_auth_squid(squids, tmp_root, squid_basic, nginx):
    window = SquidWindow(squid_basic)
    cfg = probe_config(squid_basic.address)
    p = run_probe(tmp_root, "no-creds-auth", cfg, ["--url", nginx.url("/small.bin")])
    expect_outcome(p, 4, "REJECTED",
                   f'the upstream demands proxy authentication (407) and upstream "{UPSTREAM}" '
                   f"has no credentials configured (upstreams[].credentials)")
    assert p.has("credentials: none configured for this upstream"), p.describe()
    assert p.match(r"  offered: .*") == [f'  offered: Basic realm="{REALM}"'], p.describe()
    assert len(p.round_trips()) == 1, p.describe()
    window.settle(1)
    assert window.count_407() == 1 and window.count_407_with_user() == 0, window.entries()


@pytest.mark.parametrize("with_credentials", [False, True])
def test_open_squid_asks_for_nothing(tmp_root, squid_open, nginx, secrets_dir, with_credentials):
    """No 407 at all: exit 0 after one round trip, whether credentials are configured or not."""
    if with_credentials:
        _register(UNSENT_USER, UNSENT_PW)
        cfg = probe_config(squid_open.address, UNSENT_USER,
                           file_password(secrets_dir, "unsent", UNSENT_PW))
    else:
        cfg = probe_config(squid_open.address)
    p = run_probe(tmp_root, f"open-{with_credentials}", cfg, ["--url", nginx.url("/small.bin")])
    expect_outcome(p, 0, "OK", "the upstream asked for no credentials; final status 200 OK")
    trips = p.round_trips()
    assert len(trips) == 1, p.describe()
    assert re.fullmatch(rt(1, "GET", None, "200 OK"), trips[0]), trips
    assert not p.match(r"  (offered|chosen): .*"), p.describe()


def test_credentials_not_sent_unasked(tmp_root, fakes, secrets_dir):
    """An upstream that answers 200 at once sees exactly one request, without credentials."""
    _register(UNSENT_USER, UNSENT_PW)
    up = fakes.answering("open-fake")
    cfg = probe_config(up.address, UNSENT_USER, file_password(secrets_dir, "unsent", UNSENT_PW))
    p = run_probe(tmp_root, "open-fake", cfg, ["--url", "http://origin.test?q=1"])
    expect_outcome(p, 0, "OK", "the upstream asked for no credentials; final status 200 OK")
    # An empty path gets its `/`.
    assert p.lines[0] == "probe: GET http://origin.test/?q=1", p.describe()
    reqs = up.recorded()
    assert len(reqs) == 1, [r.request_line for r in reqs]
    assert reqs[0].request_line == "GET http://origin.test/?q=1 HTTP/1.1"
    assert reqs[0].header("Host") == "origin.test"
    assert (reqs[0].header("User-Agent") or "").startswith("authshim/")
    assert reqs[0].header("Proxy-Authorization") is None, "credentials sent unasked"


def test_error_status_after_authentication(tmp_root, squid_basic, nginx, secrets_dir):
    """Accepted, but nginx answers 404: exit 7."""
    _register(BASIC_USER, BASIC_PW)
    cfg = probe_config(squid_basic.address, BASIC_USER,
                       file_password(secrets_dir, "basic", BASIC_PW))
    p = run_probe(tmp_root, "basic-404", cfg, ["--url", nginx.url("/no-such-file.bin")])
    expect_outcome(p, 7, "HTTP ERROR", f"the credentials {_who(BASIC_USER)} were accepted "
                                       f"(Basic), but the final answer is 404 Not Found")
    assert re.fullmatch(rt(2, "GET", "Basic", "404 Not Found"), p.round_trips()[-1]), p.describe()


def test_squid_error_page_after_authentication(tmp_root, squid_basic, secrets_dir):
    """Accepted, but Squid cannot reach the origin (a refused port): Squid's 503 and its
    X-Squid-Error are shown, exit 7."""
    _register(BASIC_USER, BASIC_PW)
    closed = reserved_closed_port()
    try:
        url = f"http://{LOOPBACK}:{closed.getsockname()[1]}/x"
        cfg = probe_config(squid_basic.address, BASIC_USER,
                           file_password(secrets_dir, "basic", BASIC_PW))
        p = run_probe(tmp_root, "basic-squid-503", cfg, ["--url", url])
    finally:
        closed.close()
    expect_outcome(p, 7, "HTTP ERROR", f"the credentials {_who(BASIC_USER)} were accepted "
                                       f"(Basic), but the final answer is 503 Service Unavailable")
    assert p.match(r"  X-Squid-Error: ERR_CONNECT_FAIL \d+"), p.describe()


# ---------------------------------------------------------------------------------------------
# 8: command line and config errors


# (a valid --config given first, the arguments, the start of the message)
USAGE_ERRORS = {
    "no-config": (False, [], "'probe' needs --config FILE"),
    "config-no-value": (False, ["--url", "http://example.com/x", "--config"],
                        "--config needs a file name"),
    "https-url": (True, ["--url", "https://example.com/x"], "--url needs an http:// URL"),
    "url-and-connect": (True, ["--url", "http://example.com/x", "--connect", "example.com:443"],
                        "--url and --connect exclude each other"),
    "connect-no-port": (True, ["--connect", "example.com"], "--connect needs HOST:PORT"),
    "url-no-value": (True, ["--url"], "--url needs an http:// URL"),
    "unknown-argument": (True, ["--verbose"], "unknown argument '--verbose'"),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS))
def test_usage_errors(tmp_root, case):
    """Exit 2 with the reason and the usage text; nothing is sent (the config's upstream is
    the discard port, which nothing answers: a round trip would show in stdout)."""
    with_config, args, message = USAGE_ERRORS[case]
    config = probe_config(f"{LOOPBACK}:9") if with_config else None
    p = run_probe(tmp_root, "usage", config, args)
    assert p.code == 2, p.describe()
    assert p.err.startswith(f"authshim: {message}"), p.describe()
    assert "usage: authshim probe --config FILE" in p.err, p.describe()
    assert "round trip" not in p.out and "outcome:" not in p.out, p.describe()


def test_help(tmp_root):
    p = run_probe(tmp_root, "help", None, ["--help"])
    assert p.code == 0 and p.out.startswith("usage: authshim probe --config FILE"), p.describe()


BAD_CONFIGS = {
    "json-syntax": "syntax error",
    "missing-file": "cannot read the configuration file",
    "no-upstream": 'missing required key "upstreams"',
    "unknown-credential": 'there is no "credentials" entry named "nobody"',
    "env-unset": 'environment variable "AUTHSHIM_TEST_PROBE_UNSET" is empty',
    "file-mode-0644": "has mode 0644, so users other than its owner may access it",
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config(tmp_root, secrets_dir, case):
    """Exit 1 with the problem on stderr; no round trip (the upstream would be the discard
    port: nothing answers there)."""
    d = tmp_root / "probe-configs"
    d.mkdir(exist_ok=True)
    path = d / f"bad-{case}.json"
    env = None
    if case == "json-syntax":
        path.write_text('{"upstreams": [ {"address": "127.0.0.1:9"} ')
    elif case == "no-upstream":
        path.write_text(json.dumps({"listen": ["127.0.0.1:0"]}))
    elif case == "unknown-credential":
        cfg = probe_config(f"{LOOPBACK}:9")
        cfg["upstreams"][0]["credentials"] = "nobody"
        path.write_text(json.dumps(cfg))
    elif case == "env-unset":
        cfg = probe_config(f"{LOOPBACK}:9", UNSENT_USER, {"env": "AUTHSHIM_TEST_PROBE_UNSET"})
        path.write_text(json.dumps(cfg))
        env = {"AUTHSHIM_TEST_PROBE_UNSET": ""}  # empty: no password either
    elif case == "file-mode-0644":
        _register(UNSENT_USER, UNSENT_PW)
        source = file_password(secrets_dir, "mode-0644", UNSENT_PW)
        os.chmod(source["file"], 0o644)
        path.write_text(json.dumps(probe_config(f"{LOOPBACK}:9", UNSENT_USER, source)))
    # missing-file: nothing written
    cp = run_cli(["probe", "--config", path, "--url", "http://origin.test/x"], env=env)
    RUNS.append((f"bad-{case}", cp))
    check_clean(f"bad-{case}", cp)
    p = Probe(cp, 0.0)
    assert p.code == 1, p.describe()
    assert "error: " in p.err and BAD_CONFIGS[case] in p.err, p.describe()
    assert "round trip" not in p.out and "outcome:" not in p.out, p.describe()


# ---------------------------------------------------------------------------------------------
# 9: secrets, last in the module


def test_zz_no_secret_in_probe_output(tmp_root):
    """Every probe run's stdout and stderr, searched with the registry (after proving on a
    canary that the search finds planted forms)."""
    reg = secrets.REGISTRY
    for user, pw, realm in ((BASIC_USER, BASIC_PW, None), (DIGEST_USER, DIGEST_PW, REALM),
                            (LOCK_DIGEST_USER, WRONG_PW, REALM)):
        secrets.register(user, pw, realm)
    canary = (b"x " + BASIC_PW.encode() + b" " + json.dumps(BASIC_PW).encode() + b"\n" +
              base64.b64encode(f"{BASIC_USER}:{BASIC_PW}".encode()) + b"\n" +
              digest_ha1(DIGEST_USER, REALM, DIGEST_PW).encode() + b"\n")
    hits = reg.find(canary)
    for label in (reg.label(BASIC_USER, BASIC_PW, "password"),
                  reg.label(BASIC_USER, BASIC_PW, "password (JSON-escaped)"),
                  reg.label(BASIC_USER, BASIC_PW, "base64(user:password)"),
                  reg.label(DIGEST_USER, DIGEST_PW, "MD5 HA1", REALM)):
        assert label in hits, f"the search misses a planted secret: {label}"

    with_credentials = [name for name, cp in RUNS if f'credentials: "{CRED}"' in cp.stdout]
    assert len(with_credentials) >= 10, f"too few probe runs with credentials: {with_credentials}"
    found = {}
    for name, cp in RUNS:
        text = cp.stdout + cp.stderr
        labels = reg.find(text)
        if labels or any(pw in text for pw in ALL_PASSWORDS):
            found[name] = sorted(labels)
    assert not found, f"secrets in probe output: {found}"
