"""Credential files and helpers for a Squid that requires proxy authentication: htpasswd files
for `basic_ncsa_auth` (made by Apache's `htpasswd`, password on stdin, never on a command
line), password files for `digest_file_auth` (`user:password`, or `user:realm:{HHA1}hex` for
passwords that format cannot hold), and a logging wrapper around a helper that records every
request line Squid sends it (the way to count credential checks).

Nothing here prints a password: helper logs are read back only to count lines."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.parse
from pathlib import Path

from .squid import BASIC_NCSA_AUTH, CONN_LOG, DIGEST_FILE_AUTH, Squid, SquidAuth

HTPASSWD = "/usr/bin/htpasswd"
PYTHON = "/usr/bin/python3"


def write_htpasswd(path: Path, users: dict, algorithm: str = "-m") -> Path:
    """(Re)writes an htpasswd file with `users` {name: password}. `algorithm` is an htpasswd
    flag: `-m` (apr1 MD5), `-B` (bcrypt), `-2` / `-5` (SHA-256 / SHA-512 crypt); all of them
    work with basic_ncsa_auth (not `-s` SHA-1, and `-d` DES crypt only up to 8 characters).
    The password goes through stdin (`-i`): one trailing newline is what htpasswd strips."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for i, (user, password) in enumerate(users.items()):
        flags = ["-i", algorithm] + (["-c"] if i == 0 else [])
        cp = subprocess.run([HTPASSWD, *flags, str(path), user], input=password.encode() + b"\n",
                            capture_output=True, timeout=60)
        if cp.returncode != 0:
            # stderr of htpasswd never echoes the password
            raise RuntimeError(f"htpasswd failed for user {user!r}: {cp.stderr.decode(errors='replace')}")
    Squid.give_to_proxy(path)
    return path


def digest_ha1(user: str, realm: str, password: str) -> str:
    """MD5(user:realm:password) as lowercase hex (what Squid's digest helpers answer)."""
    return hashlib.md5(f"{user}:{realm}:{password}".encode("utf-8")).hexdigest()


def digest_plain_line_ok(user: str, password: str) -> bool:
    """Whether digest_file_auth can read `user:password` in its plain format: the line is split
    with strtok(":\\n"), so neither field may contain ':' or a newline (a ':' in the password
    turns the line into `user:realm:rest`), and a line starting with ' ', '\\t' or '#' is
    skipped. Squid's helper protocol also quotes the user name with '"'."""
    return (user and password and not any(c in user + password for c in ":\n")
            and user[0] not in " \t#" and '"' not in user)


def write_digest_file(path: Path, users: dict, realm: str, hashed: bool | None = None) -> Path:
    """(Re)writes a digest_file_auth password file. Each user gets `user:password` when that
    format can hold the password (`hashed=None`, the default, or `hashed=False`), otherwise
    `user:realm:{HHA1}<md5 hex>` (`hashed=True` forces that form for everyone)."""
    lines = []
    for user, password in users.items():
        if hashed is False and not digest_plain_line_ok(user, password):
            raise ValueError(f"digest_file_auth cannot hold the password of {user!r} in plain form")
        if hashed or not digest_plain_line_ok(user, password):
            if ":" in user or "\n" in user:
                raise ValueError(f"digest_file_auth cannot hold the user name {user!r}")
            lines.append(f"{user}:{realm}:{{HHA1}}{digest_ha1(user, realm, password)}\n")
        else:
            lines.append(f"{user}:{password}\n")
    path = Path(path)
    path.write_bytes("".join(lines).encode("utf-8"))
    Squid.give_to_proxy(path)
    return path


# The wrapper: argv = [log file, real helper, its args...]. Reads Squid's request lines one at
# a time (binary, unbuffered), appends each to the log file (O_APPEND, one write per line, so
# several helper processes can share the file), forwards it to the real helper and copies the
# helper's one-line answer back. Basic and Digest helpers answer exactly one line per request
# (concurrency=0).
_WRAPPER = r'''
import os, subprocess, sys
log, argv = sys.argv[1], sys.argv[2:]
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
pending = b""
while True:
    while b"\n" not in pending:
        chunk = os.read(0, 65536)
        if not chunk:
            child.stdin.close()
            sys.exit(child.wait())
        pending += chunk
    line, _, pending = pending.partition(b"\n")
    os.write(fd, line + b"\n")
    child.stdin.write(line + b"\n")
    child.stdin.flush()
    answer = child.stdout.readline()
    if not answer:
        sys.exit(1)
    while answer:
        answer = answer[os.write(1, answer):]
'''


class HelperLog:
    """A logging wrapper around one Squid auth helper. `program` is the argv to give
    `SquidAuth(program=...)`; `lines()` the request lines the helper has seen so far (Basic:
    `user password`, both RFC 1738 %-escaped by Squid; Digest: `"user":"realm"`). The log is
    mode 0600, owned by `proxy` (the helper's user), and never printed."""

    def __init__(self, squid_dir: Path, name: str, real_program: list):
        self.dir = Path(squid_dir)
        self.script = self.dir / f"{name}-wrapper.py"
        self.path = self.dir / f"{name}-requests.log"
        self.script.write_text(_WRAPPER)
        os.chmod(self.script, 0o755)
        self.path.touch()
        Squid.give_to_proxy(self.path, 0o600)
        # /usr/bin/python3: the helper runs as user `proxy`, which may not reach a Python
        # installed under /root.
        self.program = [PYTHON, "-u", self.script, self.path, *real_program]

    def lines(self) -> list[bytes]:
        try:
            data = self.path.read_bytes()
        except OSError:
            return []
        return [l for l in data.split(b"\n") if l]

    def basic_checks(self, user: str, password: str | None = None) -> int:
        """How many Basic checks for `user` (with exactly `password` when given) the helper got."""
        n = 0
        for line in self.lines():
            u, _, p = line.partition(b" ")
            if urllib.parse.unquote_to_bytes(u) != user.encode():
                continue
            if password is None or urllib.parse.unquote_to_bytes(p) == password.encode():
                n += 1
        return n

    def total(self) -> int:
        return len(self.lines())


def basic_squid(workdir: Path, name: str, users: dict, options=("casesensitive on",
                                                                 "credentialsttl 1 second"),
                algorithm: str = "-m", conn_log: bool = False, **auth) -> Squid:
    """A Squid (not started yet) that demands Basic: `basic_ncsa_auth` behind a HelperLog
    (`.helper_log`) reading `.htpasswd` (rewritable with write_htpasswd while it runs) with
    `users`; `options` are its `auth_param basic` lines, `auth` further SquidAuth fields (realm);
    `conn_log` adds CONN_LOG for SquidWindow."""
    s = Squid(workdir, name=name, extra=CONN_LOG.format(dir=Path(workdir) / name) if conn_log else "")
    d = s.prepare_dir()
    s.htpasswd = write_htpasswd(d / "htpasswd", users, algorithm)
    s.helper_log = HelperLog(d, "basic", [BASIC_NCSA_AUTH, s.htpasswd])
    s.auth = [SquidAuth("basic", s.helper_log.program, options=list(options), **auth)]
    return s


def digest_squid(workdir: Path, name: str, users: dict, realm: str, options=(),
                 conn_log: bool = False) -> Squid:
    """A Squid (not started yet) that demands Digest: `digest_file_auth` behind a HelperLog
    (`.helper_log`) reading `.passwords` (write_digest_file's format) with `users`."""
    s = Squid(workdir, name=name, extra=CONN_LOG.format(dir=Path(workdir) / name) if conn_log else "")
    d = s.prepare_dir()
    s.passwords = write_digest_file(d / "digest-passwords", users, realm)
    s.helper_log = HelperLog(d, "digest", [DIGEST_FILE_AUTH, s.passwords])
    s.auth = [SquidAuth("digest", s.helper_log.program, realm=realm, options=list(options))]
    return s
