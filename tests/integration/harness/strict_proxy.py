"""A strict in-process upstream proxy, for the authentication behaviour Squid and Apache do not
offer: SHA-256 / SHA-512-256 Digest and their -sess forms, userhash, `username*` (RFC 8187),
qop=auth-int, RFC 2069 (no qop), opaque, several challenges in one header and across headers,
nonces that expire after N uses (`stale=true`), `Proxy-Authentication-Info: nextnonce`, and a
mid-test switch to Basic only (downgrade).

Every Proxy-Authorization is verified strictly, with the RFC 7616 formulas computed here
(independently of authshim): the response; `uri` equal to the exact request-target (absolute
URI, or host:port for CONNECT); `nc` 8 lowercase hex digits and strictly increasing per nonce
(a reused or lower nc is rejected and invalidates the nonce, as Squid does); opaque echoed;
`algorithm` echoed exactly when the challenge named one (else absent or MD5); qop one of those
offered, with a cnonce; no qop/nc/cnonce after an RFC 2069 challenge; `username`, `userhash`
and `username*` consistent. `qop`, `nc`, `algorithm` and `userhash` must be unquoted.
A wrong answer gets a fresh 407 without stale; an expired nonce with an otherwise correct
answer gets 407 with `stale=true`.

Authenticated requests: absolute-form ones are answered by the fake itself (200, JSON body
saying what it verified); CONNECT is answered 200 and then spliced to 127.0.0.1:port (for
`localhost`/`127.0.0.1` targets) or, with `connect_mode="echo"`, echoes bytes.

Everything is recorded (`seen()`, one `Seen` per request with its outcome: `challenge`
(no credentials, 407), `stale` (407 stale=true), `rejected` (407, a failed credential check,
with the reason), `ok`). test_auth_strict.py validates this fake against curl first."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import select
import socket
import threading
import urllib.parse
from dataclasses import dataclass, field

from .fakes import _FakeServer

REALM = "strict-realm"

# RFC 7616 algorithm names -> hashlib names. SHA-512-256 is FIPS 180-4 SHA-512/256 (its own
# initial values), which OpenSSL provides as "sha512_256"; not SHA-512 cut short.
_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
ALGORITHMS = ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess")

_TCHAR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]")
_NC = re.compile(r"[0-9a-f]{8}")
_EXT_VALUE = re.compile(r"([A-Za-z0-9!#$&+\-.^_`{}~]+)'([A-Za-z0-9\-]*)'"
                        r"((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+\-.^_`|~])*)")


def _base(algorithm: str) -> str:
    return algorithm[:-5] if algorithm.endswith("-sess") else algorithm


def hexhash(algorithm: str, data: bytes) -> str:
    h = hashlib.new(_HASHES[_base(algorithm)])
    h.update(data)
    return h.hexdigest()


def _b(text) -> bytes:
    return text if isinstance(text, bytes) else str(text).encode("utf-8")


def _join(*parts) -> bytes:
    return b":".join(_b(p) for p in parts)


def digest_ha1(algorithm: str, user: str, realm: str, password: str, nonce: str = "",
               cnonce: str = "") -> str:
    """H(A1); for -sess H(H(user:realm:password):nonce:cnonce) (RFC 7616 §3.4.2)."""
    ha1 = hexhash(algorithm, _join(user, realm, password))
    if algorithm.endswith("-sess"):
        ha1 = hexhash(algorithm, _join(ha1, nonce, cnonce))
    return ha1


def digest_response(algorithm: str, user: str, realm: str, password: str, nonce: str,
                    method: str, uri: str, qop: str | None = None, nc: str | None = None,
                    cnonce: str | None = None, body: bytes = b"") -> str:
    """The request-digest of RFC 7616 §3.4.1 (qop auth / auth-int) and RFC 2069 (qop None)."""
    ha1 = digest_ha1(algorithm, user, realm, password, nonce, cnonce or "")
    if qop == "auth-int":
        ha2 = hexhash(algorithm, _join(method, uri, hexhash(algorithm, body)))
    else:
        ha2 = hexhash(algorithm, _join(method, uri))
    if qop is None:
        return hexhash(algorithm, _join(ha1, nonce, ha2))
    return hexhash(algorithm, _join(ha1, nonce, nc, cnonce, qop, ha2))


def userhash(algorithm: str, user: str, realm: str) -> str:
    """RFC 7616 §3.4.4: H(unq(username) ":" unq(realm))."""
    return hexhash(algorithm, _join(user, realm))


def rfc8187_decode(value: str) -> str:
    """`UTF-8''J%C3%A4s%C3%B8n%20Doe` -> the name; ValueError unless strictly well-formed."""
    m = _EXT_VALUE.fullmatch(value)
    if not m or m.group(1).upper() != "UTF-8":
        raise ValueError(f"not an RFC 8187 UTF-8 ext-value: {value!r}")
    return urllib.parse.unquote_to_bytes(m.group(3)).decode("utf-8")  # strict


def rfc8187_encode(text: str) -> str:
    return "UTF-8''" + urllib.parse.quote(text.encode("utf-8"), safe="!#$&+-.^_`|~")


def parse_auth_params(text: str) -> dict[str, tuple[str, bool]]:
    """`a=b, c="d"` -> {name (lower case): (value, was quoted)}. Strict: ValueError on a
    duplicate parameter, a missing '=', an unterminated quoted string or junk after a value."""
    out: dict[str, tuple[str, bool]] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            return out
        start = i
        while i < n and _TCHAR.fullmatch(text[i]):
            i += 1
        name = text[start:i].lower()
        if not name:
            raise ValueError(f"expected a parameter name at {text[start:start + 20]!r}")
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            raise ValueError(f"parameter {name!r} without '='")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            value = []
            while True:
                if i >= n:
                    raise ValueError(f"unterminated quoted string for {name!r}")
                c = text[i]
                if c == "\\":
                    if i + 1 >= n:
                        raise ValueError("dangling backslash")
                    value.append(text[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    value.append(c)
                    i += 1
            val, quoted = "".join(value), True
        else:
            start = i
            while i < n and _TCHAR.fullmatch(text[i]):
                i += 1
            val, quoted = text[start:i], False
            if not val:
                raise ValueError(f"empty value for {name!r}")
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ",":
            raise ValueError(f"junk after the value of {name!r}: {text[i:i + 20]!r}")
        if name in out:
            raise ValueError(f"duplicate parameter {name!r}")
        out[name] = (val, quoted)


def _origin_form(target: str) -> str:
    """`http://host:port/p?q` -> `/p?q`."""
    parts = urllib.parse.urlsplit(target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def new_nonce() -> str:
    # base64 with '+' and '/' (IIS-like), 33 bytes -> no '=' padding
    return base64.b64encode(os.urandom(33)).decode()


@dataclass
class DigestOffer:
    """One Digest challenge the fake sends. `algorithm=None`: no algorithm parameter (MD5
    implied); `qop=None`: RFC 2069 (no qop). `nonce_uses`: successful uses per nonce before a
    correct answer gets `stale=true` (None: unlimited). `nextnonce`: on the last use of a
    nonce (on every answer when unlimited) hand over the next one in
    Proxy-Authentication-Info."""
    algorithm: str | None = "MD5"
    qop: str | None = "auth"
    realm: str = REALM
    opaque: str | None = None
    userhash: bool = False
    charset: bool = False
    nonce_uses: int | None = None
    nextnonce: bool = False

    @property
    def effective_algorithm(self) -> str:
        return self.algorithm or "MD5"

    def qop_options(self) -> list[str]:
        return [q.strip() for q in self.qop.split(",")] if self.qop else []

    def render(self, nonce: str, stale: bool = False) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(nonce)}"]
        if self.algorithm:
            parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(self.qop)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.charset:
            parts.append("charset=UTF-8")
        if self.userhash:
            parts.append("userhash=true")
        if stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


BASIC = f'Basic realm="{REALM}"'


@dataclass
class NonceState:
    nonce: str
    offer: DigestOffer
    last_nc: int = 0
    uses: int = 0
    valid: bool = True


@dataclass
class Seen:
    """One request the fake received and what it made of it."""
    connection: int
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    outcome: str = ""  # challenge | stale | rejected | ok | bad_request | dropped
    reason: str = ""
    scheme: str = ""   # scheme of the Proxy-Authorization ("" if none)
    params: dict = field(default_factory=dict)  # Digest parameters (values only)
    user: str | None = None
    username_form: str = ""  # username | username* | userhash | basic
    nc: int | None = None

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def brief(self) -> str:
        auth = self.header("Proxy-Authorization")
        if auth and auth.lower().startswith("basic"):
            auth = "Basic <redacted>"
        return f"conn{self.connection} {self.method} {self.target} -> {self.outcome}" \
               f"{' (' + self.reason + ')' if self.reason else ''}" \
               f"{' [' + auth + ']' if auth else ''}"


class Rejection(Exception):
    pass


class StrictProxy(_FakeServer):
    """`users`: {name: password}. `offers`: the 407's challenges: a list of header values, each
    a list of challenges (a DigestOffer, or a raw string such as 'NTLM' or BASIC).
    `uri_mode="path_ok"` also accepts, for an absolute-form request, a Digest `uri` that is
    just its origin-form path: what curl 7.88 sends through a proxy (not the request-target
    RFC 7616 asks for). Only the curl self-check uses it; authshim is held to "exact".
    `close_after=N`: close each connection without warning (no `Connection: close`) after
    its Nth response: right away (`close_mode="idle"`, a keep-alive limit or idle timeout),
    or (`"on_next"`) after reading and verifying the next request, unanswered (its nc counts
    as used; outcome `dropped`), so a client must retry on a new connection.
    `hold_requests()`: requests whose target contains `/hold` wait, unverified, until
    `release()` (`held` counts those waiting), so that a test can change something (a password)
    while a request is on its way."""

    def __init__(self, users: dict[str, str], offers=None, name: str = "strict",
                 connect_mode: str = "splice", uri_mode: str = "exact",
                 close_after: int | None = None, close_mode: str = "idle"):
        super().__init__(name)
        assert close_mode in ("idle", "on_next")
        self.close_after = close_after
        self.close_mode = close_mode
        assert connect_mode in ("splice", "echo")
        assert uri_mode in ("exact", "path_ok")
        self.uri_mode = uri_mode
        self.users = dict(users)
        self.offers = offers if offers is not None else [[DigestOffer()]]
        self.connect_mode = connect_mode
        self.accept_digest = True
        self.nonces: dict[str, NonceState] = {}
        self._seen: list[Seen] = []
        self._release = threading.Event()
        self._release.set()
        self.held = 0

    def hold_requests(self):
        self._release.clear()

    def release(self):
        self._release.set()

    def set_password(self, user: str, password: str):
        with self._lock:
            self.users[user] = password

    # -- configuration, also mid-test (and `drop_connections()`, from _FakeServer) ------------

    def set_offers(self, offers, accept_digest: bool = True):
        """Replaces the challenges; `accept_digest=False` also rejects every Digest answer
        (even for nonces handed out before)."""
        with self._lock:
            self.offers = offers
            self.accept_digest = accept_digest

    # -- what happened ------------------------------------------------------------------------

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def count(self, outcome: str) -> int:
        return sum(1 for s in self.seen() if s.outcome == outcome)

    @property
    def n407(self) -> int:
        return sum(1 for s in self.seen() if s.outcome in ("challenge", "stale", "rejected"))

    def counts(self) -> dict:
        out: dict = {}
        for s in self.seen():
            out[s.outcome] = out.get(s.outcome, 0) + 1
        return out

    def describe(self, limit: int = 40) -> str:
        seen = self.seen()
        lines = [f"{self.name}: {self.counts()}, {self.connections} connection(s)"]
        lines += ["  " + s.brief() for s in seen[:limit]]
        if len(seen) > limit:
            lines.append(f"  ... {len(seen) - limit} more")
        return "\n".join(lines)

    # -- HTTP ---------------------------------------------------------------------------------

    def _read_more(self, conn, buf: bytearray) -> bool:
        chunk = self._recv(conn)
        if not chunk:
            return False
        buf.extend(chunk)
        return True

    def _read_line(self, conn, buf: bytearray):
        while b"\r\n" not in buf:
            if not self._read_more(conn, buf):
                return None
        i = buf.index(b"\r\n")
        line = bytes(buf[:i])
        del buf[:i + 2]
        return line

    def _read_request(self, conn, buf: bytearray):
        """-> (method, target, version, headers, body) or None on EOF. Answers `Expect:
        100-continue` with 100 before reading the body."""
        while b"\r\n\r\n" not in buf:
            if not self._read_more(conn, buf):
                return None
        end = buf.index(b"\r\n\r\n")
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[:end + 4]
        method, target, version = (lines[0].split(" ") + ["", "", ""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        get = lambda n: [v for k, v in headers if k.lower() == n]  # noqa: E731
        if any(v.lower() == "100-continue" for v in get("expect")):
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        if any("chunked" in v.lower() for v in get("transfer-encoding")):
            parts = []
            while True:
                line = self._read_line(conn, buf)
                if line is None:
                    return None
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        line = self._read_line(conn, buf)
                        if line is None:
                            return None
                        if not line:
                            break
                    break
                while len(buf) < size + 2:
                    if not self._read_more(conn, buf):
                        return None
                parts.append(bytes(buf[:size]))
                del buf[:size + 2]
            body = b"".join(parts)
        elif get("content-length"):
            n = int(get("content-length")[0])
            while len(buf) < n:
                if not self._read_more(conn, buf):
                    return None
            body = bytes(buf[:n])
            del buf[:n]
        return method, target, version, headers, body

    def _challenge_headers(self, stale: bool = False) -> list[str]:
        """Fresh nonces for every Digest offer (called with the lock held)."""
        values = []
        for header in self.offers:
            rendered = []
            for item in header:
                if isinstance(item, DigestOffer):
                    nonce = new_nonce()
                    self.nonces[nonce] = NonceState(nonce, item)
                    rendered.append(item.render(nonce, stale=stale))
                else:
                    rendered.append(item)
            values.append(", ".join(rendered))
        return values

    @staticmethod
    def _response(status: str, headers: list[tuple[str, str]], body: bytes, close: bool) -> bytes:
        head = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
        head.append(f"Content-Length: {len(body)}")
        head.append("Connection: close" if close else "Connection: keep-alive")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    def serve(self, conn, index):
        buf = bytearray()
        answered = 0
        while True:
            limit = self.close_after is not None and answered >= self.close_after
            if limit and self.close_mode == "idle":
                return
            got = self._read_request(conn, buf)
            if got is None:
                return
            method, target, version, headers, body = got
            if "/hold" in target and not self._release.is_set():
                with self._lock:
                    self.held += 1
                self._release.wait(60)
                with self._lock:
                    self.held -= 1
            seen = Seen(index, method, target, headers, body)
            if limit:
                with self._lock:
                    self._seen.append(seen)
                    self._authenticate(seen)
                    seen.reason = f"{seen.outcome}, then closed unanswered"
                    seen.outcome = "dropped"
                return
            close = any(k.lower() in ("connection", "proxy-connection") and "close" in v.lower()
                        for k, v in headers) or version == "HTTP/1.0"
            with self._lock:
                self._seen.append(seen)
                extra = self._authenticate(seen)
                if seen.outcome == "ok":
                    answer = None
                elif seen.outcome == "bad_request":
                    answer = self._response("400 Bad Request", [], seen.reason.encode(), True)
                else:
                    chall = self._challenge_headers(stale=seen.outcome == "stale")
                    text = f"strict fake: {seen.outcome}: {seen.reason}\n".encode()
                    answer = self._response(
                        "407 Proxy Authentication Required",
                        [("Proxy-Authenticate", v) for v in chall] +
                        [("Content-Type", "text/plain")], text, close)
            answered += 1
            if answer is not None:
                conn.sendall(answer)
                if close or seen.outcome == "bad_request":
                    return
                continue
            if method == "CONNECT":
                self._tunnel(conn, buf, target, extra)
                return
            doc = {"verified": True, "method": method, "target": target,
                   "scheme": seen.scheme, "user": seen.user,
                   "username_form": seen.username_form,
                   "algorithm": seen.params.get("algorithm"), "qop": seen.params.get("qop"),
                   "nc": seen.params.get("nc"), "uri": seen.params.get("uri"),
                   "opaque": seen.params.get("opaque"),
                   "body_bytes": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}
            payload = (json.dumps(doc) + "\n").encode()
            conn.sendall(self._response("200 OK", [("Content-Type", "application/json")] + extra,
                                        payload, close))
            if close:
                return

    def _tunnel(self, conn, buf: bytearray, target: str, extra):
        host, _, port = target.rpartition(":")
        upstream = None
        if self.connect_mode == "splice":
            if host not in ("localhost", "127.0.0.1") or not port.isdigit():
                conn.sendall(self._response("403 Forbidden", [], b"only local targets\n", True))
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
            except OSError as e:
                conn.sendall(self._response("502 Bad Gateway", [], f"{e}\n".encode(), True))
                return
        head = ["HTTP/1.1 200 Connection established"] + [f"{k}: {v}" for k, v in extra]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        try:
            if upstream is None:
                if buf:
                    conn.sendall(bytes(buf))
                while True:
                    data = self._recv(conn)
                    if not data:
                        return
                    conn.sendall(data)
            if buf:
                upstream.sendall(bytes(buf))
            peers = {conn: upstream, upstream: conn}
            open_ = {conn, upstream}
            while open_ and not self._stop.is_set():
                r, _, _ = select.select(list(open_), [], [], 0.1)
                for s in r:
                    data = s.recv(65536)
                    if data:
                        peers[s].sendall(data)
                    else:
                        open_.discard(s)
                        try:
                            peers[s].shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
        finally:
            if upstream is not None:
                upstream.close()

    # -- verification (called with the lock held) ---------------------------------------------

    def _current_basic_offered(self) -> bool:
        return any(isinstance(i, str) and i.lower().startswith("basic")
                   for h in self.offers for i in h)

    def _authenticate(self, seen: Seen) -> list[tuple[str, str]]:
        """Sets seen.outcome (and reason); returns extra response headers for an `ok`."""
        values = [v for k, v in seen.headers if k.lower() == "proxy-authorization"]
        if seen.method == "CONNECT":
            if not re.fullmatch(r"[^/\s]+:\d+", seen.target):
                seen.outcome, seen.reason = "bad_request", "CONNECT needs host:port"
                return []
        elif not seen.target.startswith("http://"):
            seen.outcome, seen.reason = "bad_request", "not an absolute-form request"
            return []
        if not values:
            seen.outcome = "challenge"
            return []
        if len(values) > 1:
            seen.outcome, seen.reason = "rejected", "several Proxy-Authorization headers"
            return []
        scheme, _, rest = values[0].partition(" ")
        seen.scheme = scheme.lower()
        try:
            if seen.scheme == "basic":
                self._check_basic(seen, rest.strip())
                seen.outcome = "ok"
                return []
            if seen.scheme == "digest":
                return self._check_digest(seen, rest)
            raise Rejection(f"unexpected scheme {scheme!r}")
        except Rejection as e:
            if seen.outcome != "stale":
                seen.outcome = "rejected"
            seen.reason = str(e)
            return []

    def _check_basic(self, seen: Seen, token: str):
        seen.username_form = "basic"
        if not self._current_basic_offered():
            raise Rejection("Basic answered but not offered")
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as e:
            raise Rejection(f"bad Basic token: {e}") from None
        user, sep, password = decoded.partition(":")
        if not sep or user not in self.users:
            raise Rejection("unknown Basic user")
        seen.user = user
        if not hmac.compare_digest(self.users[user].encode(), password.encode()):
            raise Rejection("wrong Basic password")

    def _check_digest(self, seen: Seen, text: str) -> list[tuple[str, str]]:
        if not self.accept_digest:
            raise Rejection("Digest answers are not accepted any more")
        try:
            raw = parse_auth_params(text)
        except ValueError as e:
            raise Rejection(f"malformed Digest parameters: {e}") from None
        seen.params = {k: v for k, (v, _) in raw.items()}
        p = seen.params
        for name in ("nc", "qop", "algorithm", "userhash"):
            if name in raw and raw[name][1]:
                raise Rejection(f"{name} must not be quoted")
        for name in ("realm", "nonce", "uri", "response"):
            if name not in p:
                raise Rejection(f"missing {name}")
        state = self.nonces.get(p["nonce"])
        if state is None:
            raise Rejection("unknown nonce")
        if not state.valid:
            raise Rejection("invalidated nonce")
        offer = state.offer
        if p["realm"] != offer.realm:
            raise Rejection(f"realm {p['realm']!r} != {offer.realm!r}")
        if p["uri"] != seen.target and not (
                self.uri_mode == "path_ok" and seen.method != "CONNECT"
                and p["uri"] == _origin_form(seen.target)):
            raise Rejection(f"uri {p['uri']!r} != request-target {seen.target!r}")
        # algorithm: echoed exactly when the challenge named one; else absent or MD5
        if offer.algorithm is not None:
            if p.get("algorithm") != offer.algorithm:
                raise Rejection(f"algorithm {p.get('algorithm')!r} != offered {offer.algorithm!r}")
        elif p.get("algorithm", "MD5") != "MD5":
            raise Rejection(f"algorithm {p.get('algorithm')!r} but none was offered")
        algorithm = offer.effective_algorithm
        # opaque: echoed exactly, absent when none was sent
        if p.get("opaque") != offer.opaque:
            raise Rejection(f"opaque {p.get('opaque')!r} != {offer.opaque!r}")
        # qop, nc, cnonce
        nc = None
        if offer.qop_options():
            qop = p.get("qop")
            if qop not in offer.qop_options():
                raise Rejection(f"qop {qop!r} not among {offer.qop_options()}")
            if not p.get("cnonce"):
                raise Rejection("qop without cnonce")
            if not _NC.fullmatch(p.get("nc", "")):
                raise Rejection(f"nc {p.get('nc')!r} is not 8 lowercase hex digits")
            nc = int(p["nc"], 16)
            seen.nc = nc
        else:
            qop = None
            for name in ("qop", "nc", "cnonce"):
                if name in p:
                    raise Rejection(f"{name} after an RFC 2069 challenge without qop")
        # who
        uh = p.get("userhash", "false")
        if uh not in ("true", "false"):
            raise Rejection(f"userhash={uh!r}")
        if "username" in p and "username*" in p:
            raise Rejection("both username and username*")
        if uh == "true":
            if not offer.userhash:
                raise Rejection("userhash=true but the challenge did not offer it")
            if "username*" in p:
                raise Rejection("username* with userhash=true")
            users = [u for u in self.users
                     if userhash(algorithm, u, offer.realm) == p.get("username")]
            if not users:
                raise Rejection("userhash matches no user")
            seen.username_form = "userhash"
        elif "username*" in p:
            try:
                name = rfc8187_decode(p["username*"])
            except (ValueError, UnicodeDecodeError) as e:
                raise Rejection(str(e)) from None
            users = [name] if name in self.users else []
            seen.username_form = "username*"
        elif "username" in p:
            name = p["username"]
            try:  # a raw UTF-8 name arrives here as latin-1 text
                name = name.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
            users = [name] if name in self.users else []
            seen.username_form = "username"
        else:
            raise Rejection("no username")
        if not users:
            raise Rejection("unknown user")
        user = users[0]
        seen.user = user
        expected = digest_response(algorithm, user, offer.realm, self.users[user], p["nonce"],
                                   seen.method, p["uri"], qop, p.get("nc"), p.get("cnonce"),
                                   seen.body)
        if not hmac.compare_digest(expected.encode(), p["response"].encode("latin-1", "replace")):
            raise Rejection("wrong response (password or computation)")
        if nc is not None:
            if nc <= state.last_nc:
                state.valid = False
                raise Rejection(f"nc {nc} not above the last nc {state.last_nc} of this nonce")
            state.last_nc = nc
        if offer.nonce_uses is not None and state.uses >= offer.nonce_uses:
            state.valid = False
            seen.outcome = "stale"
            raise Rejection("nonce used up: stale")
        state.uses += 1
        seen.outcome = "ok"
        extra = []
        if offer.nextnonce and (offer.nonce_uses is None or state.uses >= offer.nonce_uses):
            nxt = new_nonce()
            self.nonces[nxt] = NonceState(nxt, offer)
            info = [f"nextnonce={_quote(nxt)}"]
            if qop:
                ha1 = digest_ha1(algorithm, user, offer.realm, self.users[user], p["nonce"],
                                 p.get("cnonce", ""))
                ha2 = hexhash(algorithm, _join("", p["uri"]))
                rspauth = hexhash(algorithm, _join(ha1, p["nonce"], p["nc"], p["cnonce"], qop,
                                                   ha2))
                info += [f"qop={qop}", f"rspauth={_quote(rspauth)}",
                         f"cnonce={_quote(p['cnonce'])}", f"nc={p['nc']}"]
            extra.append(("Proxy-Authentication-Info", ", ".join(info)))
        return extra
