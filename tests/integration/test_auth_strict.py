"""Upstream authentication against the strict in-process fake proxy (harness/strict_proxy.py):
what Squid and Apache do not produce. First the fake itself is proven (RFC test vectors, then
curl 7.88's independent Digest client against it); then authshim is run through it with curl
as the client (no proxy credentials on the client side).

Fake self-check findings that shape the tests (checked here, see the `test_fake_*` cases):
- curl 7.88 sends the origin-form path as the Digest `uri` of a proxied http:// request (not
  the absolute request-target RFC 7616 §3.4 asks for), even with --request-target; for CONNECT
  it sends host:port. The fake's `uri_mode="path_ok"` accepts curl's path; only the curl
  self-check uses it. authshim is held to the exact request-target.
- curl before 8.8.0 (curl/curl#12897, #13070) computes `algorithm=SHA-512-256` with plain
  SHA-256. The fake's SHA-512-256 is proven with the RFC 7616 §3.9.2 vectors (corrected, see
  PROTOCOL-NOTES) instead, and the curl case checks that the fake tells the two apart."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import secrets
from harness.authshim import make_config
from harness.client import CURL, RawConn, curl, run_parallel_clients, sha256_file
from harness.secrets import write_secret
from harness.strict_proxy import (ALGORITHMS, BASIC, REALM, DigestOffer, NonceState, Rejection,
                                  Seen, StrictProxy, digest_ha1, digest_response,
                                  rfc8187_encode, userhash)
from harness.util import LOOPBACK, clean_env, slow_factor

USER = "svc-pki"
PW = 'Str1ct p@ss: "q" \\ grüße €'
UNI_USER = "Jäsøn Doe"          # RFC 7616 §3.9.2
UNI_PW = "Secret, or not?"
USERS = {USER: PW, UNI_USER: UNI_PW}
WRONG_PW = "Wrong-pw-Zq8x7"
ORIGIN = "http://origin.example"


def _remember(user: str, password: str):
    """Registers the credential for the secrets checks (harness/secrets.py): password,
    base64(user:password), MD5 / SHA-256 / SHA-512-256 HA1."""
    secrets.register(user, password, REALM)


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def strict():
    """`strict(offers, **kw)` -> a running StrictProxy knowing USERS; stopped at teardown."""
    made = []

    def make(offers=None, **kw):
        p = StrictProxy(USERS, offers, **kw).start()
        made.append(p)
        return p

    try:
        yield make
    finally:
        for p in made:
            p.stop()


_names = iter(range(1, 10_000))


def start_shim(launcher, secrets_dir: Path, fake: StrictProxy, name: str,
               schemes=("digest", "basic"), user: str = USER, password: str = PW, **sections):
    """authshim in front of `fake` with `user`'s password in a 0600 file, log level trace."""
    _remember(user, password)
    pw_file = write_secret(secrets_dir / f"{name}-{next(_names)}.txt", password)
    cfg = make_config(
        fake.address, upstream_name="strict",
        upstreams=[{"name": "strict", "address": fake.address, "credentials": "machine",
                    "schemes": list(schemes)}],
        credentials={"machine": {"username": user, "password": {"file": str(pw_file)}}},
        lockout={"max_rejections": 1, "retry_after": None},
        log={"level": "trace"}, **sections)
    return launcher(cfg, f"strict-{name}")


def get(port: int, path: str = "/x", args=(), proxy_args=None, max_time: float = 20.0):
    """One curl request through the proxy on `port` -> (status, parsed JSON or text, result)."""
    r = curl([*args, "-w", "\n%{http_code}", ORIGIN + path], proxy_port=port,
             max_time=max_time * slow_factor())
    body, _, status = r.text.rpartition("\n")
    try:
        doc = json.loads(body)
    except ValueError:
        doc = body
    return (int(status) if status.isdigit() else None), doc, r


def get_many(port: int, count: int, path: str = "/n", extra=()) -> list[str]:
    """`count` GETs over one curl process (one client connection, URL glob)."""
    argv = [CURL, "-sS", "--max-time", f"{60 * slow_factor():g}", "--proxy",
            f"http://{LOOPBACK}:{port}", *extra, "-o", "/dev/null", "-w", "%{http_code}\n",
            f"{ORIGIN}{path}/[1-{count}]"]
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=clean_env(),
                        timeout=90 * slow_factor())
    return cp.stdout.decode().split()


def ok_seen(fake: StrictProxy) -> list[Seen]:
    return [s for s in fake.seen() if s.outcome == "ok"]


def auth_schemes(fake: StrictProxy) -> list[str]:
    return [s.scheme for s in fake.seen() if s.scheme]


def curl_direct(fake: StrictProxy, user: str, password: str, url: str, *args):
    """curl straight to the fake with its own proxy credentials."""
    return curl(["-o", "/dev/null", "-w", "%{http_code}", "--proxy-user", f"{user}:{password}",
                 *args, url], proxy_port=fake.port)


# ---------------------------------------------------------------------------------------------
# The fake, proven: RFC vectors


RFC7616_391 = dict(user="Mufasa", password="Circle of Life", realm="http-auth@example.org",
                   nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", method="GET",
                   uri="/dir/index.html", qop="auth", nc="00000001",
                   cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
RFC7616_392 = dict(realm="api@example.org", nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
                   uri="/doe.json", nc="00000001",
                   cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
                   opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS")
SHA512_256_USERHASH = "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
SHA512_256_RESPONSE = "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"


def test_fake_rfc_vectors():
    assert "sha512_256" in hashlib.algorithms_available
    assert hashlib.new("sha512_256", b"abc").hexdigest() == \
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"  # FIPS 180-4
    # RFC 2617 §3.5
    assert digest_response("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life",
                           "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html",
                           "auth", "00000001", "0a4f113b") == "6629fae49393a05397450978507c4ef1"
    v = RFC7616_391
    args = (v["user"], v["realm"], v["password"], v["nonce"], v["method"], v["uri"], v["qop"],
            v["nc"], v["cnonce"])
    assert digest_response("MD5", *args) == "8ca523f5e9506fed4657c9700eebdbec"
    assert digest_response("SHA-256", *args) == \
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    v = RFC7616_392
    assert userhash("SHA-512-256", UNI_USER, v["realm"]) == SHA512_256_USERHASH
    assert digest_response("SHA-512-256", UNI_USER, v["realm"], UNI_PW, v["nonce"], "GET",
                           v["uri"], "auth", v["nc"], v["cnonce"]) == SHA512_256_RESPONSE
    assert rfc8187_encode(UNI_USER) == "UTF-8''J%C3%A4s%C3%B8n%20Doe"


def _rfc392_header(username_param: str, uh: bool) -> str:
    v = RFC7616_392
    return (f'{username_param}, realm="{v["realm"]}", uri="{v["uri"]}", '
            f'algorithm=SHA-512-256, nonce="{v["nonce"]}", nc={v["nc"]}, '
            f'cnonce="{v["cnonce"]}", qop=auth, response="{SHA512_256_RESPONSE}", '
            f'opaque="{v["opaque"]}", userhash={"true" if uh else "false"}')


@pytest.mark.parametrize("form", ["userhash", "username*", "wrong-userhash", "nc-reuse"])
def test_fake_verifier_rfc7616_392(form):
    """The fake's whole verifier (parsing, username forms, response, nc) on the RFC 7616 §3.9.2
    request (with the corrected values): userhash and username* accepted; the userhash as
    printed in the RFC and a replayed nc rejected."""
    v = RFC7616_392
    offer = DigestOffer(algorithm="SHA-512-256", realm=v["realm"], opaque=v["opaque"],
                        userhash=True, charset=True)
    fake = StrictProxy(USERS)  # never started: only its verifier is used
    try:
        fake.nonces[v["nonce"]] = NonceState(v["nonce"], offer)
        if form in ("userhash", "nc-reuse"):
            header = _rfc392_header(f'username="{SHA512_256_USERHASH}"', True)
        elif form == "username*":
            header = _rfc392_header("username*=UTF-8''J%C3%A4s%C3%B8n%20Doe", False)
        else:
            header = _rfc392_header('username="488869477bf257147b804c45308cd62a'
                                    'c4e25eb717b12b298c79e62dcea254ec"', True)  # as printed
        seen = Seen(0, "GET", v["uri"], [("Proxy-Authorization", "Digest " + header)], b"")
        if form == "wrong-userhash":
            with pytest.raises(Rejection, match="userhash matches no user"):
                fake._check_digest(seen, header)
            return
        fake._check_digest(seen, header)
        assert seen.outcome == "ok" and seen.user == UNI_USER
        assert seen.username_form == ("username*" if form == "username*" else "userhash")
        if form == "nc-reuse":
            again = Seen(0, "GET", v["uri"], [], b"")
            with pytest.raises(Rejection, match="nc 1 not above the last nc 1"):
                fake._check_digest(again, header)
    finally:
        fake.listener.close()


# ---------------------------------------------------------------------------------------------
# The fake, proven: curl 7.88's Digest client against it


CURL_CASES = {
    "MD5": [[DigestOffer("MD5")]],
    "MD5-sess": [[DigestOffer("MD5-sess")]],
    "SHA-256": [[DigestOffer("SHA-256")]],
    "SHA-256-sess": [[DigestOffer("SHA-256-sess")]],
    "rfc2069": [[DigestOffer(algorithm=None, qop=None)]],
    "md5-no-qop": [[DigestOffer("MD5", qop=None)]],
    "auth-int": [[DigestOffer("SHA-256", qop="auth-int")]],  # curl hashes the empty GET body
    "userhash": [[DigestOffer("SHA-256", userhash=True)]],
    "opaque": [[DigestOffer("MD5", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")]],
    "unknown-schemes-first": [["Negotiate", "NTLM"], ['Bearer realm="x", scope="y"',
                                                     DigestOffer("SHA-256")]],
}


@pytest.mark.parametrize("case", list(CURL_CASES))
def test_fake_accepts_curl(strict, case):
    fake = strict(CURL_CASES[case], uri_mode="path_ok")
    r = curl_direct(fake, USER, PW, ORIGIN + "/proof?a=1", "--proxy-digest")
    assert r.text == "200", f"{r.describe()}\n{fake.describe()}"
    assert fake.counts() == {"challenge": 1, "ok": 1}, fake.describe()
    ok = ok_seen(fake)[0]
    offer = [o for h in CURL_CASES[case] for o in h if isinstance(o, DigestOffer)][0]
    assert ok.params["uri"] == "/proof?a=1"  # curl's path, see the module docstring
    assert ok.params.get("qop") == (offer.qop if offer.qop else None)
    assert ok.username_form == ("userhash" if offer.userhash else "username")


@pytest.mark.parametrize("alg", ["SHA-512-256", "SHA-512-256-sess"])
def test_fake_sha512_256_vs_curl(strict, alg):
    """curl < 8.8 hashes SHA-512-256 with SHA-256: the fake must reject that (it computes
    SHA-512/256, proven by the RFC vector above); a fixed curl must be accepted."""
    fake = strict([[DigestOffer(alg)]], uri_mode="path_ok")
    r = curl_direct(fake, USER, PW, ORIGIN + "/proof", "--proxy-digest")
    answer = [s for s in fake.seen() if s.scheme == "digest"][0]
    p = answer.params
    as_sha256 = digest_response(alg.replace("SHA-512-256", "SHA-256"), USER, REALM, PW,
                                p["nonce"], "GET", p["uri"], p["qop"], p["nc"], p["cnonce"])
    if p["response"] == as_sha256:
        print(f"\ncurl computed {alg} with SHA-256 (curl < 8.8): rejected by the fake, as it "
              f"must be")
        assert r.text == "407" and answer.outcome == "rejected", fake.describe()
        assert "wrong response" in answer.reason
    else:
        assert r.text == "200" and answer.outcome == "ok", fake.describe()


def test_fake_rejects_wrong_password(strict, tmp_root):
    fake = strict([[DigestOffer("SHA-256")]], uri_mode="path_ok")
    headers = tmp_root / "wrong-pw.headers"
    r = curl_direct(fake, USER, WRONG_PW, ORIGIN + "/proof", "--proxy-digest", "-D", headers)
    assert r.text == "407", r.describe()
    assert fake.counts() == {"challenge": 1, "rejected": 1}, fake.describe()
    assert "wrong response" in fake.seen()[-1].reason
    last = headers.read_bytes().decode("latin-1").split("\r\n\r\n")[-2]
    challenges = [l for l in last.split("\r\n") if l.lower().startswith("proxy-authenticate:")]
    assert challenges and not any("stale" in c.lower() for c in challenges), last


def _curl_then_capture(fake) -> Seen:
    r = curl_direct(fake, USER, PW, ORIGIN + "/proof", "--proxy-digest")
    assert r.text == "200", f"{r.describe()}\n{fake.describe()}"
    return ok_seen(fake)[0]


def _raw(fake, target: str, authorization: str):
    req = (f"GET {target} HTTP/1.1\r\nHost: origin.example\r\n"
           f"Proxy-Authorization: {authorization}\r\n\r\n").encode("latin-1")
    with RawConn(fake.port) as c:
        c.send(req)
        return c.read_response()


def test_fake_rejects_replayed_nc(strict):
    fake = strict([[DigestOffer("MD5")]], uri_mode="path_ok")
    ok = _curl_then_capture(fake)
    resp = _raw(fake, ok.target, ok.header("Proxy-Authorization"))
    assert resp.status == 407, resp.describe()
    last = fake.seen()[-1]
    assert last.outcome == "rejected" and "nc 1 not above the last nc 1" in last.reason, \
        fake.describe()
    assert not any("stale" in v.lower() for v in resp.header_values("Proxy-Authenticate"))


def test_fake_rejects_wrong_uri(strict):
    fake = strict([[DigestOffer("MD5")]], uri_mode="path_ok")
    ok = _curl_then_capture(fake)
    resp = _raw(fake, ORIGIN + "/other", ok.header("Proxy-Authorization"))
    assert resp.status == 407, resp.describe()
    last = fake.seen()[-1]
    assert last.outcome == "rejected" and last.reason.startswith("uri "), fake.describe()


def test_fake_exact_uri_mode_rejects_curl_path(strict):
    """The mode authshim is held to: curl's origin-form uri for an absolute-form request is
    rejected (and is what curl sends: see the module docstring)."""
    fake = strict([[DigestOffer("MD5")]])
    r = curl_direct(fake, USER, PW, ORIGIN + "/proof", "--proxy-digest")
    assert r.text == "407", r.describe()
    assert fake.seen()[-1].reason == f"uri '/proof' != request-target '{ORIGIN}/proof'"


def test_fake_connect_exact_uri_with_curl(strict, nginx):
    """CONNECT: curl's uri is host:port, accepted in exact mode; the tunnel reaches nginx."""
    fake = strict([[DigestOffer("SHA-256")]])
    r = curl_direct(fake, USER, PW, nginx.tls_url("/small.bin"), "--proxy-digest", "-p",
                    "--cacert", nginx.cert)
    assert r.text == "200", f"{r.describe()}\n{fake.describe()}"
    ok = ok_seen(fake)
    assert len(ok) == 1 and ok[0].method == "CONNECT", fake.describe()
    assert ok[0].params["uri"] == f"localhost:{nginx.tls_port}" == ok[0].target


def test_fake_basic_with_curl(strict):
    fake = strict([["Negotiate", BASIC]])
    r = curl_direct(fake, UNI_USER, UNI_PW, ORIGIN + "/b", "--proxy-basic")
    assert r.text == "200", f"{r.describe()}\n{fake.describe()}"
    r = curl_direct(fake, UNI_USER, WRONG_PW, ORIGIN + "/b", "--proxy-basic")
    assert r.text == "407", r.describe()
    assert [s.outcome for s in fake.seen()] == ["ok", "rejected"], fake.describe()


# ---------------------------------------------------------------------------------------------
# authshim through the fake


def _no_rejections(fake):
    bad = [s.brief() for s in fake.seen() if s.outcome in ("rejected", "bad_request")]
    assert not bad, "the fake rejected authshim's answers:\n" + "\n".join(bad[:10]) + \
                    f"\n{fake.describe()}"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_digest_algorithm(strict, start_authshim, secrets_dir, alg):
    fake = strict([[DigestOffer(alg)]])
    shim = start_shim(start_authshim, secrets_dir, fake, f"alg-{alg}")
    for i in range(3):
        status, doc, r = get(shim.port, f"/alg/{i}")
        assert status == 200 and isinstance(doc, dict) and doc["verified"], \
            f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)
    ok = ok_seen(fake)
    assert len(ok) == 3
    assert all(s.params.get("algorithm") == alg and s.params["qop"] == "auth" for s in ok)
    assert [s.nc for s in ok] == [1, 2, 3] and len({s.params["nonce"] for s in ok}) == 1, \
        fake.describe()
    assert fake.n407 == 1, f"expected one 407 (then the nonce is reused): {fake.describe()}"


def test_digest_algorithm_absent_means_md5_not_echoed(strict, start_authshim, secrets_dir):
    fake = strict([[DigestOffer(algorithm=None)]])
    shim = start_shim(start_authshim, secrets_dir, fake, "alg-absent")
    status, doc, r = get(shim.port)
    assert status == 200, f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)
    assert "algorithm" not in ok_seen(fake)[0].params


def test_userhash(strict, start_authshim, secrets_dir):
    fake = strict([[DigestOffer("SHA-256", userhash=True)]])
    shim = start_shim(start_authshim, secrets_dir, fake, "userhash")
    for i in range(2):
        status, doc, r = get(shim.port, f"/uh/{i}")
        assert status == 200, f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)
    ok = ok_seen(fake)
    assert all(s.username_form == "userhash" and s.params.get("userhash") == "true" and
               s.params["username"] == userhash("SHA-256", USER, REALM) for s in ok), \
        fake.describe()


@pytest.mark.parametrize("charset", [True, False], ids=["charset-utf8", "no-charset"])
def test_non_ascii_username(strict, start_authshim, secrets_dir, charset):
    """charset=UTF-8 offered: `username*` (RFC 8187); not offered: raw UTF-8 bytes (what
    curl and Squid-era servers use)."""
    fake = strict([[DigestOffer("SHA-256", charset=charset)]])
    shim = start_shim(start_authshim, secrets_dir, fake, f"utf8-{charset}", user=UNI_USER,
                      password=UNI_PW)
    status, doc, r = get(shim.port)
    assert status == 200, f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)
    ok = ok_seen(fake)[0]
    assert ok.user == UNI_USER
    if charset:
        assert ok.username_form == "username*", fake.describe()
        assert ok.params["username*"] == "UTF-8''J%C3%A4s%C3%B8n%20Doe"
    else:
        assert ok.username_form == "username", fake.describe()


@pytest.mark.parametrize("size", [2048, 600 * 1024 + 7])
def test_auth_int_post(strict, start_authshim, secrets_dir, tmp_root, size):
    """qop=auth-int only: H(entity-body) over the buffered body, as the first request of a
    fresh authshim (407, then replayed with credentials), then a GET (H of the empty body)."""
    fake = strict([[DigestOffer("SHA-256", qop="auth-int")]])
    shim = start_shim(start_authshim, secrets_dir, fake, f"authint-{size}")
    body = tmp_root / f"strict-post-{size}.bin"
    body.write_bytes(os.urandom(size))
    status, doc, r = get(shim.port, "/ocsp", ["-H", "Content-Type: application/ocsp-request",
                                              "--data-binary", f"@{body}"])
    assert status == 200, f"{r.describe()}\n{fake.describe()}"
    assert doc["body_bytes"] == size and doc["body_sha256"] == sha256_file(body)
    assert doc["qop"] == "auth-int" and doc["method"] == "POST"
    status, doc, r = get(shim.port, "/after")
    assert status == 200 and doc["qop"] == "auth-int", f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)


def test_rfc2069_no_qop(strict, start_authshim, secrets_dir):
    fake = strict([[DigestOffer(algorithm=None, qop=None)]])
    shim = start_shim(start_authshim, secrets_dir, fake, "rfc2069")
    for i in range(3):
        status, doc, r = get(shim.port, f"/legacy/{i}")
        assert status == 200, f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)
    assert all(not ({"qop", "nc", "cnonce"} & set(s.params)) for s in ok_seen(fake))


def test_opaque_echoed(strict, start_authshim, secrets_dir):
    opaque = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    fake = strict([[DigestOffer("SHA-256", opaque=opaque)]])
    shim = start_shim(start_authshim, secrets_dir, fake, "opaque")
    for i in range(2):
        status, doc, r = get(shim.port, f"/op/{i}")
        assert status == 200 and doc["opaque"] == opaque, f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)


SEVERAL = ["Negotiate", "NTLM", BASIC, DigestOffer("MD5"),
           DigestOffer("SHA-512-256", qop="auth,auth-int"), DigestOffer("SHA-256")]


@pytest.mark.parametrize("layout", ["one-header", "several-headers"])
@pytest.mark.parametrize("schemes", [("digest", "basic"), ("basic",)],
                         ids=["digest,basic", "basic"])
def test_several_challenges(strict, start_authshim, secrets_dir, layout, schemes):
    offers = [SEVERAL] if layout == "one-header" else [[c] for c in SEVERAL]
    fake = strict(offers)
    shim = start_shim(start_authshim, secrets_dir, fake, f"several-{layout}-{len(schemes)}",
                      schemes=schemes)
    for i in range(2):
        status, doc, r = get(shim.port, f"/several/{i}")
        assert status == 200, f"{r.describe()}\n{fake.describe()}"
    _no_rejections(fake)
    used = auth_schemes(fake)
    if schemes == ("basic",):
        assert used == ["basic", "basic"], fake.describe()
    else:
        assert used == ["digest", "digest"], fake.describe()
        assert all(s.params.get("algorithm") == "SHA-512-256" and s.params["qop"] == "auth"
                   for s in ok_seen(fake)), fake.describe()
    assert fake.n407 == 1, fake.describe()


def test_stale_storm(strict, start_authshim, secrets_dir):
    """A nonce is good for 3 uses: 100 sequential requests, all 200; each expiry costs exactly
    one 407 (stale=true), never a rejection, and the credential is never paused."""
    fake = strict([[DigestOffer("SHA-256", nonce_uses=3)]])
    shim = start_shim(start_authshim, secrets_dir, fake, "stale")
    statuses = get_many(shim.port, 100, "/stale")
    assert statuses == ["200"] * 100, f"{statuses}\n{fake.describe()}"
    _no_rejections(fake)
    counts = fake.counts()
    print(f"\nstale storm: {counts}, {fake.connections} upstream connection(s)")
    assert counts.get("ok") == 100
    assert counts.get("challenge") == 1 and fake.connections == 1, fake.describe()
    assert counts.get("stale") == math.ceil(100 / 3) - 1, fake.describe()
    # not paused: one more request goes through
    status, _, r = get(shim.port, "/after-storm")
    assert status == 200, r.describe()
    assert "rejected" not in shim.log_text()


def test_nextnonce(strict, start_authshim, secrets_dir):
    """The nonce's last use hands over the next one: no 407 after the first in 100 requests."""
    fake = strict([[DigestOffer("SHA-256", nonce_uses=3, nextnonce=True)]])
    shim = start_shim(start_authshim, secrets_dir, fake, "nextnonce")
    statuses = get_many(shim.port, 100, "/next")
    assert statuses == ["200"] * 100, f"{statuses}\n{fake.describe()}"
    _no_rejections(fake)
    ok = ok_seen(fake)
    print(f"\nnextnonce: {fake.counts()}, {len({s.params['nonce'] for s in ok})} nonces")
    assert fake.n407 == 1, fake.describe()
    assert len({s.params["nonce"] for s in ok}) == math.ceil(100 / 3)


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "same-connection"])
def test_downgrade_refused(strict, start_authshim, secrets_dir, restart):
    """Digest first; then the fake offers only Basic and rejects Digest answers. `restarted`:
    it also drops its connections, so authshim meets the Basic-only challenge on a fresh
    connection. authshim must never send Basic: the client gets 502."""
    fake = strict([[DigestOffer("SHA-256")]])
    shim = start_shim(start_authshim, secrets_dir, fake, f"downgrade-{restart}")
    for i in range(2):
        status, _, r = get(shim.port, f"/before/{i}")
        assert status == 200, f"{r.describe()}\n{fake.describe()}"
    fake.set_offers([[BASIC]], accept_digest=False)
    if restart:
        fake.drop_connections()
        time.sleep(0.3)
    results = []
    for i in range(3):
        status, doc, r = get(shim.port, f"/after/{i}")
        results.append((status, doc if isinstance(doc, str) else json.dumps(doc)))
    print(f"\ndowngrade ({'restarted' if restart else 'same connection'}): {results}")
    assert all(s == 502 for s, _ in results), f"{results}\n{fake.describe()}"
    assert "basic" not in auth_schemes(fake), fake.describe()
    if restart:
        first = results[0][1].lower()
        assert "basic refused" in first or "downgrade" in first, results[0]


def test_no_usable_scheme(strict, start_authshim, secrets_dir):
    fake = strict([["NTLM"], ['Negotiate']])
    shim = start_shim(start_authshim, secrets_dir, fake, "nousable")
    status, doc, r = get(shim.port)
    assert status == 502, r.describe()
    text = doc.lower() if isinstance(doc, str) else json.dumps(doc)
    print(f"\nno usable scheme: {text.strip()}")
    assert "ntlm" in text and "negotiate" in text, text
    assert "allowed: digest, basic" in text, text
    assert not auth_schemes(fake), fake.describe()


@pytest.mark.parametrize("close", [None, "idle", "on_next"],
                         ids=["keepalive", "closes-idle-after-5", "drops-6th-request"])
def test_nc_under_concurrency(strict, start_authshim, secrets_dir, close):
    """16 parallel clients x 20 requests: all 200, every (nonce, nc) once and increasing per
    nonce in the order the fake received them (the fake rejects anything else). With `close`
    the fake closes each connection after 5 answers: while idle, or after reading (and
    counting the nc of) the 6th request, which authshim must retry on a new connection with
    the same nonce and a higher nc."""
    fake = strict([[DigestOffer("SHA-256")]], close_after=5 if close else None,
                  close_mode=close or "idle")
    shim = start_shim(start_authshim, secrets_dir, fake, f"concurrent-{close}")
    results, errors, took = run_parallel_clients(
        16, lambda i, out: out.extend(get_many(shim.port, 20, f"/c{i}")), 120 * slow_factor())
    bad = [(i, r) for i, r in enumerate(results) if r != ["200"] * 20]
    assert not bad, f"{bad[:3]} {errors}\n{fake.describe()}"
    _no_rejections(fake)
    ok = ok_seen(fake)
    assert len(ok) == 320, fake.describe()
    pairs = [(s.params["nonce"], s.nc) for s in fake.seen() if s.nc is not None]
    assert len(set(pairs)) == len(pairs)
    per_nonce: dict = {}
    for nonce, nc in pairs:
        per_nonce.setdefault(nonce, []).append(nc)
    assert all(ncs == sorted(ncs) for ncs in per_nonce.values())
    conns_per_nonce = {}
    for s in fake.seen():
        if s.nc is not None:
            conns_per_nonce.setdefault(s.params["nonce"], set()).add(s.connection)
    moved = sum(1 for c in conns_per_nonce.values() if len(c) > 1)
    print(f"\n16 x 20 concurrent ({close or 'keep-alive'}): {fake.counts()}, "
          f"{fake.connections} upstream connections, {len(per_nonce)} nonces "
          f"({moved} used on more than one connection), {took:.1f}s")


def test_wrong_password_one_rejection(strict, start_authshim, secrets_dir):
    """A wrong password: the fake answers a fresh 407 without stale; authshim tries the
    credential once (max_rejections 1) and answers every client 502."""
    fake = strict([[DigestOffer("SHA-256")]])
    shim = start_shim(start_authshim, secrets_dir, fake, "wrongpw", password=WRONG_PW)
    statuses = get_many(shim.port, 10, "/wrong")
    results, errors, _ = run_parallel_clients(
        8, lambda i, out: out.extend(get_many(shim.port, 5, f"/wrong{i}")), 60 * slow_factor())
    statuses += [s for r in results for s in (r or ["none"])]
    assert statuses == ["502"] * 50, f"{statuses} {errors}\n{fake.describe()}"
    rejected = [s for s in fake.seen() if s.outcome == "rejected"]
    assert len(rejected) == 1 and "wrong response" in rejected[0].reason, fake.describe()
    assert len(auth_schemes(fake)) == 1, fake.describe()


def test_connect_authenticated(strict, start_authshim, secrets_dir, nginx, tmp_root):
    fake = strict([[DigestOffer("SHA-256")]])
    shim = start_shim(start_authshim, secrets_dir, fake, "connect",
                      access={"connect_ports": [443, nginx.tls_port]})
    medium = nginx.files["medium.bin"]
    for i in range(2):
        out = tmp_root / f"strict-connect-{i}.out"
        r = curl(["-p", "--cacert", nginx.cert, "-o", out, "-w", "%{http_code}",
                  nginx.tls_url("/medium.bin")], proxy_port=shim.port)
        assert r.returncode == 0 and r.text == "200", f"{r.describe()}\n{fake.describe()}"
        assert sha256_file(out) == medium.sha256
    _no_rejections(fake)
    ok = ok_seen(fake)
    assert len(ok) == 2 and all(s.method == "CONNECT" for s in ok), fake.describe()
    assert all(s.params["uri"] == f"localhost:{nginx.tls_port}" for s in ok)


# ---------------------------------------------------------------------------------------------
# Last: no secret in any output of the authshim instances of this module


def test_zz_no_secrets_in_authshim_output(tmp_root, module_authshims):
    """Passwords, base64(user:password) and the MD5 / SHA-256 / SHA-512-256 HA1 of every
    credential (also JSON- and %-escaped) in no file of any authshim of this module (trace
    level); the search is shown to find a planted secret first."""
    mine = [inst for inst in module_authshims() if inst.name.startswith("strict-")]
    reg = secrets.REGISTRY
    assert mine and reg, "no authshim with credentials ran in this module"
    # The HA1 planted here comes from the fake's own RFC 7616 code, not the registry's.
    canary = (json.dumps(PW) + " " + digest_ha1("SHA-512-256", UNI_USER, REALM, UNI_PW)).encode()
    found = reg.find(canary)
    assert {reg.label(USER, PW, "password (JSON-escaped)"),
            reg.label(UNI_USER, UNI_PW, "SHA-512-256 HA1", REALM)} <= found, found
    hits = []
    for inst in mine:
        assert inst.config["log"]["level"] == "trace"
        files = [p for p in inst.dir.iterdir() if p.is_file() and p.name != "authshim.json"]
        hits += [(inst.name, p.name, label) for p, label in reg.find_in_files(files)]
    assert not hits, f"secrets in authshim output: {hits}"
