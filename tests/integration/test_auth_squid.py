"""Upstream authentication against a real Squid 5: Basic (`basic_ncsa_auth`, htpasswd made by
Apache's htpasswd) and Digest (`digest_file_auth`), each behind a logging wrapper that records
the request lines Squid sends the helper.

Per scheme: GET 1 KB and 50 MB (sha256), POST bodies (2 KB and 600 KB, Content-Length,
chunked, `Expect: 100-continue`) as the first request of a fresh authshim (the 407 forces a
replay) and after a GET, CONNECT + TLS, 1000 sequential keep-alive requests over one client
connection and 16 parallel clients x 100 requests, counting Squid's `TCP_DENIED/407` entries.
Then a password with `@ ! % : " \\ '`, spaces and UTF-8; wrong passwords (credential checks
counted at the helper, lockout, `retry_after`, `max_rejections`); and last, that no password,
`base64(user:password)` or Digest HA1 appears in any authshim log or `authshim check` output.

Squid facts these tests rely on (Squid 5.7 source and behaviour, checked here):
- Basic: `casesensitive on` keeps `CORP\\svc-pki` as is. Squid queries the helper again for a
  credential that failed last time (`Auth::Basic::User::updateCached` resets Failed to
  Unchecked), so every attempt with a wrong password is one helper line; a correct one is
  cached for `credentialsttl` (1 second here). While a check is pending, Squid queues further
  requests with the same credentials instead of asking again: the helper count alone can
  under-count concurrent attempts, so the lockout tests also count the 407s Squid logged with
  the user name (requests that carried credentials).
- Digest: `digest_file_auth` splits `user:password` lines with strtok(":"), so a password with
  ':' must be stored as `user:realm:{HHA1}md5hex`. Squid 5.7 drops the backslash from a Digest
  user name before the helper lookup (curl's `CORP\\\\svc-pki` reaches the helper as
  `"CORPsvc-pki"`), so Digest tests use a user name without one. Nonces: 50 uses
  (`nonce_max_count`); near the limit Squid hands over `Proxy-Authentication-Info: nextnonce`.
- A 407 to a request whose body Squid had not read yet (anything beyond its ~64 KB read
  buffer): Squid answers `Connection: keep-alive` but never answers a further request on that
  connection (checked by hand with a raw client: 65,000 bytes then a second request -> 200;
  70,000 bytes -> no answer). A replay must then go over a new connection."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from harness import secrets
from harness.authshim import make_config, run_cli
from harness.client import (burst, clients_not_all_200, curl, get_keepalive, run_parallel_clients,
                            sha256_file, summarize)
from harness.secrets import write_secret
from harness.squid import SquidWindow, squid_available
from harness.squid_auth import basic_squid, digest_ha1, digest_plain_line_ok, digest_squid
from harness.util import slow_factor, wait_until

pytestmark = pytest.mark.skipif(not squid_available(), reason="squid is not installed")

REALM = "authshim-test"
# Basic keeps the backslash (casesensitive on); Digest cannot (see the module docstring).
BASIC_USER = "CORP\\svc-pki"
DIGEST_USER = "svc-pki"
BASIC_PW = "Basic-pw-3f9Kq2"
DIGEST_PW = "Digest-pw-8mZt41"
SPECIAL_USER = "special-user"
SPECIAL_PW = 'p@ss! 100%: "q" back\\slash \'s\' grüße €✓'
# Lockout tests: one user each, so that helper counts of one test do not mix with another's.
LOCK_USERS = {"lock-one": "Lock-right-1a", "lock-retry": "Lock-right-2b", "lock-three": "Lock-right-3c"}
WRONG_PW = "Wrong-pw-Zq8x7"
DIGEST_LOCK_USER = "lock-digest"
DIGEST_LOCK_PW = "Lock-right-4d"


def _remember_secret(user: str, password: str, digest: bool):
    """Registers the credential for the secrets checks (harness/secrets.py); Digest with the
    realm, for its HA1 forms."""
    secrets.register(user, password, REALM if digest else None)


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def squid_basic(tmp_root):
    users = {BASIC_USER: BASIC_PW, SPECIAL_USER: SPECIAL_PW, **LOCK_USERS}
    with basic_squid(tmp_root, "squid-basic", users, algorithm="-B", conn_log=True) as s:
        yield s


@pytest.fixture(scope="module")
def squid_digest(tmp_root):
    users = {DIGEST_USER: DIGEST_PW, SPECIAL_USER: SPECIAL_PW, DIGEST_LOCK_USER: DIGEST_LOCK_PW}
    # DIGEST_USER in the plain `user:password` form, SPECIAL_USER as {HHA1} (it has a ':').
    with digest_squid(tmp_root, "squid-digest", users, REALM, conn_log=True,
                      options=["nonce_max_count 50", "nonce_max_duration 30 minutes"]) as s:
        yield s


class Setup:
    """One scheme's pieces: its Squid, user, password and authshim config builder."""

    def __init__(self, scheme, squid, user, password, nginx, secrets_dir):
        self.scheme = scheme
        self.squid = squid
        self.user = user
        self.password = password
        self.nginx = nginx
        self.secrets_dir = secrets_dir

    def config(self, password_source: dict, user: str | None = None, lockout: dict | None = None,
               **sections) -> dict:
        return make_config(
            self.squid.address, upstream_name="squid",
            upstreams=[{"name": "squid", "address": self.squid.address, "credentials": "machine",
                        "schemes": ["digest", "basic"]}],
            credentials={"machine": {"username": user or self.user, "password": password_source}},
            limits={"replay_body": 1048576},
            lockout=lockout or {"max_rejections": 1, "retry_after": None},
            access={"connect_ports": [443, self.nginx.tls_port]},
            log={"level": "trace"}, **sections)

    def password_file(self, name: str, password: str) -> dict:
        path = write_secret(self.secrets_dir / f"{name}.txt", password)
        return {"file": str(path)}

    def start(self, launcher, name: str, user: str | None = None, password: str | None = None,
              lockout: dict | None = None):
        """A fresh authshim with this scheme's (or the given) credentials in a 0600 file."""
        user = user or self.user
        password = self.password if password is None else password
        _remember_secret(user, password, self.scheme == "digest")
        src = self.password_file(f"{name}-{self.scheme}", password)
        return launcher(self.config(src, user=user, lockout=lockout), f"{name}-{self.scheme}")


@pytest.fixture(scope="module", params=["basic", "digest"])
def setup(request, nginx, secrets_dir):
    if request.param == "basic":
        squid = request.getfixturevalue("squid_basic")
        return Setup("basic", squid, BASIC_USER, BASIC_PW, nginx, secrets_dir)
    squid = request.getfixturevalue("squid_digest")
    return Setup("digest", squid, DIGEST_USER, DIGEST_PW, nginx, secrets_dir)


@pytest.fixture(scope="module")
def shim(setup, start_authshim_module):
    """One authshim per scheme for the plain functional tests. Basic takes its password from
    a file (relative to the config file), Digest from an environment variable."""
    _remember_secret(setup.user, setup.password, setup.scheme == "digest")
    if setup.scheme == "basic":
        write_secret(setup.secrets_dir / "basic-module.txt", setup.password)
        cfg = setup.config({"file": "../secrets/basic-module.txt"})
        return start_authshim_module(cfg, "shim-basic")
    cfg = setup.config({"env": "AUTHSHIM_TEST_DIGEST_PASSWORD"})
    return start_authshim_module(cfg, "shim-digest",
                                 env={"AUTHSHIM_TEST_DIGEST_PASSWORD": setup.password})


# ---------------------------------------------------------------------------------------------
# Functional tests, per scheme


def test_get_1k(setup, shim, nginx, tmp_root):
    small = nginx.files["small.bin"]
    window = SquidWindow(setup.squid)
    out = tmp_root / f"auth-get-1k-{setup.scheme}.out"
    r = curl(["-o", out, "-w", "%{http_code}", nginx.url("/small.bin")], proxy_port=shim.port)
    assert r.returncode == 0 and r.text == "200", r.describe()
    assert sha256_file(out) == small.sha256
    window.settle(1)
    served = [e for e in window.entries() if e[1] == "TCP_MISS/200"]
    assert served and all(e[4] != "-" for e in served), \
        f"Squid served the request without an authenticated user: {window.entries()}"


def test_get_50mb(setup, shim, big_file, nginx, tmp_root):
    out = tmp_root / f"auth-get-50m-{setup.scheme}.out"
    r = curl(["-o", out, "-w", "%{http_code} %{size_download}", nginx.url("/big.bin")],
             proxy_port=shim.port, max_time=60 * slow_factor())
    try:
        assert r.returncode == 0 and r.text == f"200 {big_file.size}", r.describe()
        assert sha256_file(out) == big_file.sha256
    finally:
        out.unlink(missing_ok=True)


POST_CASES = {
    # name: (body size, curl options, GET first to learn the scheme)
    "first-2k-ocsp": (2 * 1024, ["-H", "Expect:"], False),
    "first-600k": (600 * 1024 + 7, ["-H", "Expect:"], False),
    "first-600k-chunked": (600 * 1024 + 7, ["-H", "Expect:", "-H", "Transfer-Encoding: chunked"], False),
    "first-600k-expect-100": (600 * 1024 + 7, ["-H", "Expect: 100-continue"], False),
    "warm-600k": (600 * 1024 + 7, ["-H", "Expect:"], True),
}


@pytest.mark.parametrize("case", list(POST_CASES))
def test_post_body(setup, start_authshim, pyorigin, nginx, tmp_root, case):
    """POST bodies checked by sha256 at the upload origin. `first-*`: the POST is the first
    request of a fresh authshim, so Squid answers it with 407 and authshim must replay the body
    (all sizes here are below limits.replay_body = 1 MB) with credentials. `warm-*`: a GET
    first (Basic is then pre-emptive; Digest has a nonce on that upstream connection)."""
    size, options, warm = POST_CASES[case]
    body = tmp_root / f"auth-post-{size}.bin"
    if not body.exists():
        body.write_bytes(os.urandom(size))
    _remember_secret(setup.user, setup.password, setup.scheme == "digest")
    src = setup.password_file(f"post-{setup.scheme}", setup.password)
    # upstream_response 3s: a failure shows as a 504 within 3 s instead of 10 s
    shim = start_authshim(setup.config(src, timeouts={"upstream_response": "3s"}),
                          f"post-{case}-{setup.scheme}")
    if warm:
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/small.bin")],
                 proxy_port=shim.port)
        assert r.text == "200", r.describe()
    window = SquidWindow(setup.squid)
    r = curl([*options, "-H", "Content-Type: application/ocsp-request", "--data-binary",
              f"@{body}", "-w", "\n%{http_code}", pyorigin.url(f"/post/{case}")],
             proxy_port=shim.port, max_time=30 * slow_factor())
    out, _, status = r.text.rpartition("\n")
    window.settle(1)
    squid_saw = [(e[1], e[2]) for e in window.entries()]
    assert r.returncode == 0 and status == "200", \
        f"[{setup.scheme}] POST {size} bytes ({case}): got {status} {out.strip()!r}; " \
        f"Squid logged {squid_saw}"
    doc = json.loads(out)
    assert doc["bytes"] == size and doc["sha256"] == sha256_file(body), \
        {k: doc.get(k) for k in ("bytes", "sha256", "chunked")}
    if not warm:
        assert window.count_407() >= 1, "Squid never challenged: the replay was not exercised"


def test_connect_tls(setup, start_authshim, nginx, tmp_root):
    """CONNECT as the first request of a fresh authshim (407, then answered), then a second
    tunnel."""
    shim = setup.start(start_authshim, "connect")
    window = SquidWindow(setup.squid)
    medium = nginx.files["medium.bin"]
    for i in range(2):
        out = tmp_root / f"auth-connect-{setup.scheme}-{i}.out"
        r = curl(["-p", "--cacert", nginx.cert, "-o", out, "-w", "%{http_code}",
                  nginx.tls_url("/medium.bin")], proxy_port=shim.port)
        assert r.returncode == 0 and r.text == "200", r.describe()
        assert sha256_file(out) == medium.sha256
    window.settle(2)
    tunnels = [e for e in window.entries() if e[2] == "CONNECT" and e[1].endswith("/200")]
    assert len(tunnels) == 2 and all(e[4] != "-" for e in tunnels), window.entries()
    n407 = window.count_407()
    print(f"\n[{setup.scheme}] 2 CONNECTs on a fresh authshim: {n407} x 407 at Squid")
    if setup.scheme == "basic":
        assert n407 == 1, f"Basic: expected exactly one 407 (then pre-emptive), got {n407}"


def test_1000_sequential_keepalive(setup, start_authshim, nginx):
    shim = setup.start(start_authshim, "seq")
    window = SquidWindow(setup.squid)
    t0 = time.monotonic()
    statuses = get_keepalive(shim.port, nginx, 1000)
    took = time.monotonic() - t0
    assert len(statuses) == 1000 and all(s == 200 for s in statuses), \
        f"after {len(statuses)} requests: last {statuses[-1]!r}"
    window.settle(1000)
    n407, conns = window.count_407(), window.connections()
    msg = (f"[{setup.scheme}] 1000 sequential requests over one client connection: {n407} x 407 "
           f"at Squid, {conns} upstream connection(s), {took:.1f}s")
    print("\n" + msg)
    served = [e for e in window.entries() if e[1] == "TCP_MISS/200"]
    assert len(served) == 1000 and all(e[4] != "-" for e in served), msg
    if setup.scheme == "basic":
        assert n407 == 1, msg
    else:
        assert n407 <= 1 + 1000 // 50, msg


def test_16_parallel_clients_x100(setup, start_authshim, nginx):
    shim = setup.start(start_authshim, "par")
    window = SquidWindow(setup.squid)
    results, errors, took = run_parallel_clients(
        16, lambda i, out: get_keepalive(shim.port, nginx, 100, out), 120 * slow_factor())
    bad = clients_not_all_200(results, 100)
    assert not errors and not bad, f"errors {errors}; clients not all 200: {bad}"
    window.settle(1600)
    n407, conns = window.count_407(), window.connections()
    msg = (f"[{setup.scheme}] 16 parallel clients x 100 requests: {n407} x 407 at Squid, "
           f"{conns} upstream connection(s), {took:.1f}s")
    print("\n" + msg)
    if setup.scheme == "basic":
        # before the first 407 nobody knows the scheme: at most one 407 per client in flight
        assert n407 <= 16, msg
    else:
        assert n407 <= 16 + 1600 // 50 + 4, msg
        assert n407 <= conns + 1600 // 50 + 4, msg


def test_special_password(setup, start_authshim, nginx):
    """`@ ! % : " \\ '`, spaces and UTF-8 in the password, from a file given relative to the
    config file. Digest: digest_file_auth cannot hold this password in its plain
    `user:password` form (strtok on ':'), so Squid's file has `user:realm:{HHA1}...`."""
    if setup.scheme == "digest":
        assert not digest_plain_line_ok(SPECIAL_USER, SPECIAL_PW)
        line = (setup.squid.dir / "digest-passwords").read_text(encoding="utf-8")
        assert f"{SPECIAL_USER}:{REALM}:{{HHA1}}" in line
    _remember_secret(SPECIAL_USER, SPECIAL_PW, setup.scheme == "digest")
    name = f"special-{setup.scheme}"
    write_secret(setup.secrets_dir / f"{name}.txt", SPECIAL_PW)
    cfg = setup.config({"file": f"../secrets/{name}.txt"}, user=SPECIAL_USER)
    shim = start_authshim(cfg, name)
    window = SquidWindow(setup.squid)
    for _ in range(3):
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", nginx.url("/small.bin")],
                 proxy_port=shim.port)
        assert r.returncode == 0 and r.text == "200", r.describe()
    window.settle(3)
    served = [e for e in window.entries() if e[1] == "TCP_MISS/200"]
    assert len(served) == 3 and all(e[4] == SPECIAL_USER for e in served), window.entries()
    if setup.scheme == "basic":
        assert setup.squid.helper_log.basic_checks(SPECIAL_USER, SPECIAL_PW) >= 1


# ---------------------------------------------------------------------------------------------
# Wrong passwords (Basic, counted at the helper)


def _rejection_502s(responses) -> list:
    """The responses that are not a prompt 502 whose body says the upstream rejected the
    credentials (prompt: within 5 s, x3 on sanitizer builds; a waiting request only waits for
    the one request that tries the credential)."""
    return [r for r in responses
            if not (hasattr(r, "status") and r.status == 502 and "rejected" in r.text.lower()
                    and r.elapsed < 5 * slow_factor())]


def _basic_setup(squid_basic, nginx, secrets_dir):
    return Setup("basic", squid_basic, BASIC_USER, BASIC_PW, nginx, secrets_dir)


def _wait_checks(helper_log, user, password, at_least, timeout=5.0):
    try:
        wait_until(lambda: helper_log.basic_checks(user, password) >= at_least,
                   timeout * slow_factor(), what="helper checks")
    except TimeoutError:
        pass
    time.sleep(0.3)  # anything late would show up now
    return helper_log.basic_checks(user, password)


def test_wrong_password_one_check_then_502(squid_basic, start_authshim, nginx, secrets_dir):
    user = "lock-one"
    st = _basic_setup(squid_basic, nginx, secrets_dir)
    shim = st.start(start_authshim, "wrong1", user=user, password=WRONG_PW)
    window = SquidWindow(squid_basic)
    responses = burst(shim.port, nginx.url("/small.bin"), total=100, parallel=16)
    bad = _rejection_502s(responses)
    assert not bad, f"expected 100 x 502 'rejected'; got {summarize(responses)}; first other: " \
                    f"{bad[0].describe() if hasattr(bad[0], 'describe') else bad[0]!r}"
    checks = _wait_checks(squid_basic.helper_log, user, WRONG_PW, 1)
    window.settle(1)
    with_creds = window.count_407_with_user()
    print(f"\n[basic] wrong password, 100 requests (16 parallel): {checks} helper check(s), "
          f"{with_creds} request(s) with credentials rejected by Squid, {window.count_407()} x 407")
    assert checks == 1, f"expected exactly 1 credential check with the wrong password, got {checks}"
    assert with_creds == 1, f"expected exactly 1 request carrying the credentials, got {with_creds}"
    assert squid_basic.helper_log.basic_checks(user) == checks


def test_wrong_password_retry_after_then_fixed(squid_basic, start_authshim, nginx, secrets_dir):
    user = "lock-retry"
    st = _basic_setup(squid_basic, nginx, secrets_dir)
    _remember_secret(user, WRONG_PW, False)
    _remember_secret(user, LOCK_USERS[user], False)
    pw_file = secrets_dir / "retry.txt"
    write_secret(pw_file, WRONG_PW)
    cfg = st.config({"file": str(pw_file)}, user=user,
                    lockout={"max_rejections": 1, "retry_after": "2s"})
    shim = start_authshim(cfg, "wrong-retry")
    log = squid_basic.helper_log
    url = nginx.url("/small.bin")

    t0 = time.monotonic()
    first = burst(shim.port, url, total=100, parallel=16)
    t_first_done = time.monotonic()
    bad = _rejection_502s(first)
    assert not bad, f"burst 1: {summarize(first)}"
    assert _wait_checks(log, user, WRONG_PW, 1) == 1, "burst 1: expected exactly 1 check"

    # Still paused: a request now (well inside retry_after) must not reach Squid's helper.
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", url], proxy_port=shim.port)
    assert r.text == "502", r.describe()
    assert log.basic_checks(user, WRONG_PW) == 1, "a request during the pause was tried upstream"

    # retry_after 2s + up to 25 % jitter: the pause ends at most 2.5 s after the rejection,
    # which happened before burst 1 ended (its 502s say so): burst 2 starts 2.9 s after that.
    time.sleep(max(0.0, 2.9 - (time.monotonic() - t_first_done)))
    t_second = time.monotonic()
    second = burst(shim.port, url, total=100, parallel=16)
    assert not _rejection_502s(second), f"burst 2: {summarize(second)}"
    checks = _wait_checks(log, user, WRONG_PW, 2)
    print(f"\n[basic] retry_after 2s: burst 1 ({t_first_done - t0:.1f}s) -> 1 check; burst 2 "
          f"{t_second - t_first_done:.1f}s after burst 1 -> {checks} checks in total")
    assert checks == 2, f"expected exactly one more check after retry_after, got {checks} in total"

    # Fix the password, restart authshim: 200.
    status, _, killed = shim.stop()
    assert status == 0 and not killed, shim.log_tail()
    write_secret(pw_file, LOCK_USERS[user])
    fixed = start_authshim(cfg, "fixed-retry")
    for _ in range(3):
        r = curl(["-o", "/dev/null", "-w", "%{http_code}", url], proxy_port=fixed.port)
        assert r.returncode == 0 and r.text == "200", r.describe()
    assert log.basic_checks(user, LOCK_USERS[user]) >= 1
    assert log.basic_checks(user, WRONG_PW) == 2


def test_max_rejections_3_exactly_3_checks(squid_basic, start_authshim, nginx, secrets_dir):
    user = "lock-three"
    st = _basic_setup(squid_basic, nginx, secrets_dir)
    shim = st.start(start_authshim, "wrong3", user=user, password=WRONG_PW,
                    lockout={"max_rejections": 3, "retry_after": None})
    window = SquidWindow(squid_basic)
    responses = burst(shim.port, nginx.url("/small.bin"), total=100, parallel=16)
    assert not _rejection_502s(responses), f"expected 100 x 502 'rejected'; got {summarize(responses)}"
    checks = _wait_checks(squid_basic.helper_log, user, WRONG_PW, 3)
    window.settle(1)
    with_creds = window.count_407_with_user()
    print(f"\n[basic] max_rejections 3: {checks} helper checks, {with_creds} requests with "
          f"credentials rejected by Squid")
    assert checks == 3, f"expected exactly 3 credential checks, got {checks}"
    assert with_creds == 3, f"expected exactly 3 requests carrying the credentials, got {with_creds}"


def test_digest_wrong_password_one_attempt(squid_digest, start_authshim, nginx, secrets_dir):
    """Digest: Squid asks its helper for HA1 (cached), so count the requests that carried
    credentials in Squid's log instead: exactly one."""
    st = Setup("digest", squid_digest, DIGEST_USER, DIGEST_PW, nginx, secrets_dir)
    shim = st.start(start_authshim, "wrongd", user=DIGEST_LOCK_USER, password=WRONG_PW)
    window = SquidWindow(squid_digest)
    responses = burst(shim.port, nginx.url("/small.bin"), total=100, parallel=16)
    assert not _rejection_502s(responses), f"expected 100 x 502 'rejected'; got {summarize(responses)}"
    window.settle(1)
    with_creds = window.count_407_with_user()
    print(f"\n[digest] wrong password, 100 requests (16 parallel): {with_creds} request(s) with "
          f"credentials rejected by Squid, {window.count_407()} x 407")
    assert with_creds == 1, f"expected exactly 1 request carrying the credentials, got {with_creds}"


# ---------------------------------------------------------------------------------------------
# Secrets: last in the module, over every authshim this module started


def test_zz_secrets_absent(tmp_root, nginx, squid_basic, squid_digest, secrets_dir, module_authshims):
    reg = secrets.REGISTRY
    assert reg, "no secret was recorded: the module's other tests did not run"
    # Canary: the same search finds a password written on purpose (proves it can fail).
    canary = tmp_root / "canary.log"
    canary.write_bytes(b"x " + SPECIAL_PW.encode() + b" x\n" +
                       base64.b64encode(f"{BASIC_USER}:{BASIC_PW}".encode()) + b"\n" +
                       digest_ha1(DIGEST_USER, REALM, DIGEST_PW).encode() + b"\n" +
                       json.dumps(SPECIAL_PW).encode() + b"\n")
    os.chmod(canary, 0o600)
    canary_hits = {label for _, label in reg.find_in_files([canary])}
    canary.unlink()
    for label in (reg.label(SPECIAL_USER, SPECIAL_PW, "password"),
                  reg.label(BASIC_USER, BASIC_PW, "base64(user:password)"),
                  reg.label(DIGEST_USER, DIGEST_PW, "MD5 HA1", REALM),
                  reg.label(SPECIAL_USER, SPECIAL_PW, "password (JSON-escaped)")):
        assert label in canary_hits, f"the search misses a planted secret: {label}"

    # Every log and output file of every authshim started in this module (trace level).
    mine = [inst for inst in module_authshims() if inst.config.get("credentials")]
    assert mine, "no authshim with credentials was started"
    files = []
    for inst in mine:
        assert inst.config["log"]["level"] == "trace"
        files += [p for p in inst.dir.iterdir() if p.is_file() and p.name != "authshim.json"]
        lf = inst.log_file()
        if lf is not None:
            files.append(lf)
    hits = reg.find_in_files(files)
    assert not hits, f"secrets in authshim output: {[(p.name, l) for p, l in hits]}"

    # `authshim check` prints the effective configuration: no secret from any source.
    st = Setup("basic", squid_basic, SPECIAL_USER, SPECIAL_PW, nginx, secrets_dir)
    checks = {
        "file": (st.config({"file": str(write_secret(secrets_dir / "check.txt", SPECIAL_PW))},
                           user=SPECIAL_USER), {}),
        "env": (st.config({"env": "AUTHSHIM_TEST_CHECK_PW"}, user=SPECIAL_USER),
                {"AUTHSHIM_TEST_CHECK_PW": SPECIAL_PW}),
        "plain": (st.config({"plain": SPECIAL_PW}, user=SPECIAL_USER), {}),
    }
    for kind, (cfg, env) in checks.items():
        path = tmp_root / f"check-{kind}.json"
        path.write_text(json.dumps(cfg, indent=2))
        cp = run_cli(["check", "--config", path], env=env)
        out = cp.stdout + cp.stderr
        path.unlink()  # the plain one holds the password
        assert cp.returncode == 0, f"check ({kind}) exit {cp.returncode}: " \
                                   f"{[l for l in out.splitlines() if 'password' not in l][:20]}"
        found = reg.find(out)
        assert not found, f"`authshim check` ({kind} source) printed: {sorted(found)}"
