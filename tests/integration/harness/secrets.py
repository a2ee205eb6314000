"""The secrets the tests hand to authshim, and the search for them in output.

Every credential a test gives authshim is registered here: `register(user, password, realm)`
by the test (the realm is needed for the Digest HA1), and automatically by `Authshim.start`
from the config's `credentials` (the `file`, `env` or `plain` password). The registry derives
the forms that must never appear in any log, `authshim check` output or test output ("needles"):

- the password as UTF-8, JSON-escaped (ASCII and UTF-8) and %-escaped;
- base64(`user:password`) (the Basic credentials), also JSON- and %-escaped;
- with a realm: the MD5, SHA-256 and SHA-512-256 HA1, hex(H(`user:realm:password`)), in lower
  and upper case.

Each needle has a label ("password of 'svc' (JSON-escaped)", "SHA-256 HA1 of 'svc' #2": the
second password registered for that user) that names its kind and user, never the secret;
reports show labels only. The module's needles are handed to the suite-wide scan at the end
of the session (conftest.py, tests/integration/scan_secrets.py); the scan reuses `scan_file`.
`write_secret` writes a password file the way authshim reads one."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.parse
from pathlib import Path

HA1_ALGORITHMS = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}


def ha1(algorithm: str, user: str, realm: str, password: str) -> str:
    """hex(H(user:realm:password)) for an RFC 7616 algorithm name (no -sess)."""
    return hashlib.new(HA1_ALGORITHMS[algorithm],
                       f"{user}:{realm}:{password}".encode("utf-8")).hexdigest()


def _escaped(kind: str, value: str) -> dict[str, bytes]:
    forms = {kind: value.encode("utf-8")}
    for how, text in (("JSON-escaped", json.dumps(value)[1:-1]),
                      ("JSON-escaped UTF-8", json.dumps(value, ensure_ascii=False)[1:-1]),
                      ("%-escaped", urllib.parse.quote(value, safe=""))):
        if text.encode("utf-8") not in forms.values():
            forms[f"{kind} ({how})"] = text.encode("utf-8")
    return forms


def needle_forms(user: str, password: str, realm: str | None = None) -> dict[str, bytes]:
    """{kind: bytes} for one credential (kinds as in the module docstring, without the user)."""
    forms = _escaped("password", password)
    forms.update(_escaped("base64(user:password)",
                          base64.b64encode(f"{user}:{password}".encode("utf-8")).decode()))
    if realm is not None:
        for alg in HA1_ALGORITHMS:
            value = ha1(alg, user, realm, password)
            forms[f"{alg} HA1"] = value.encode()
            forms[f"{alg} HA1 (upper case)"] = value.upper().encode()
    return forms


# Files are read in blocks of this size (plus an overlap of the longest needle).
_BLOCK = 16 * 1024 * 1024


def scan_bytes(data: bytes, needles: dict[bytes, str]) -> set[str]:
    """Labels of the needles found in `data`."""
    return {label for needle, label in needles.items() if needle in data}


def scan_file(path, needles: dict[bytes, str], block: int = _BLOCK) -> set[str]:
    """Labels of the needles found in the file (bytes, no decoding; read in blocks of `block`
    bytes, each searched together with the last (longest needle - 1) bytes before it)."""
    if not needles:
        return set()
    overlap = max(len(n) for n in needles) - 1
    found: set[str] = set()
    tail = b""
    with open(path, "rb") as f:
        while True:
            block_data = f.read(block)
            if not block_data:
                break
            data = tail + block_data
            found |= scan_bytes(data, needles)
            tail = data[-overlap:] if overlap > 0 else b""
    return found


class Registry:
    def __init__(self):
        self.needles: dict[bytes, str] = {}          # needle -> label
        self._passwords: dict[str, list[str]] = {}   # user -> distinct passwords, in order
        self._seen: set[tuple] = set()

    def __len__(self) -> int:
        return len(self.needles)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def _suffix(self, user: str, password: str) -> str:
        passwords = self._passwords.setdefault(user, [])
        if password not in passwords:
            passwords.append(password)
        n = passwords.index(password) + 1
        return "" if n == 1 else f" #{n}"

    def register(self, user: str, password: str, realm: str | None = None):
        """Registers one credential (idempotent). `realm` adds the Digest HA1 forms."""
        if not password or (user, password, realm) in self._seen:
            return
        self._seen.add((user, password, realm))
        suffix = self._suffix(user, password)
        for kind, needle in needle_forms(user, password, realm).items():
            self.needles.setdefault(needle, f"{kind} of {user!r}{suffix}")

    def register_config(self, config: dict, config_dir: Path, env: dict | None = None):
        """Registers every credential of an authshim config whose password can be read here:
        `plain`, `env` (from `env`, else this process's environment), `file` (relative to
        `config_dir`; one trailing CRLF or LF dropped, as authshim does)."""
        for cred in (config.get("credentials") or {}).values():
            if not isinstance(cred, dict) or not isinstance(cred.get("username"), str):
                continue
            source = cred.get("password")
            if not isinstance(source, dict):
                continue
            password = None
            if isinstance(source.get("plain"), str):
                password = source["plain"]
            elif isinstance(source.get("env"), str):
                password = (env or {}).get(source["env"], os.environ.get(source["env"]))
            elif isinstance(source.get("file"), str):
                try:
                    data = (Path(config_dir) / source["file"]).read_bytes()
                except OSError:
                    continue
                data = data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data
                password = data.decode("utf-8", "replace")
            if password:
                self.register(cred["username"], password)

    def label(self, user: str, password: str, kind: str, realm: str | None = None) -> str:
        """The label under which the `kind` form of this credential was registered."""
        return self.needles[needle_forms(user, password, realm)[kind]]

    def find(self, data) -> set[str]:
        """Labels of the registered needles in `data` (bytes, or text encoded as UTF-8)."""
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        return scan_bytes(data, self.needles)

    def find_in_files(self, paths) -> list[tuple[Path, str]]:
        """(path, label) for every registered needle found in the given files."""
        hits = []
        for p in paths:
            try:
                found = scan_file(p, self.needles)
            except OSError:
                continue
            hits += [(Path(p), label) for label in sorted(found)]
        return hits


REGISTRY = Registry()
register = REGISTRY.register


def write_secret(path: Path, text: str) -> Path:
    """A password file as authshim wants it: mode 0600, one trailing newline."""
    path.write_bytes(text.encode("utf-8") + b"\n")
    os.chmod(path, 0o600)
    return path
