"""The command line: --version, --help, unknown arguments, and `authshim check` on the example
config and on broken ones (exit 1, each error naming its file and JSON pointer or line:col)."""

import json
import re

import pytest

from harness.authshim import make_config, run_cli, source_dir


def test_version():
    r = run_cli(["--version"])
    assert r.returncode == 0, r.stderr
    assert re.search(r"\d+\.\d+\.\d+", r.stdout + r.stderr), (r.stdout, r.stderr)


def test_help():
    r = run_cli(["--help"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "run" in out and "check" in out, out


@pytest.mark.parametrize("args", [["--definitely-not-an-option"], ["frobnicate"],
                                  ["run", "--no-such-flag"]], ids=["option", "command", "run-option"])
def test_unknown_argument_prints_usage_and_exits_2(args):
    r = run_cli(args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "usage" in r.stderr.lower(), r.stderr


@pytest.mark.parametrize("args", [["service", "install"], ["winhttp", "apply"],
                                  ["credentials", "set", "machine", "--username", "u"]],
                         ids=["service", "winhttp", "credentials"])
def test_windows_commands_are_refused_clearly_elsewhere(args):
    r = run_cli(args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert f"'{args[0]}' is only available on Windows" in r.stderr, r.stderr
    assert r.stdout == "", r.stdout


def _plain_secrets(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "plain" and isinstance(v, str):
                yield v
            else:
                yield from _plain_secrets(v)
    elif isinstance(node, list):
        for v in node:
            yield from _plain_secrets(v)


def test_check_example_config():
    example = source_dir() / "packaging" / "authshim.example.json"
    assert example.is_file(), f"{example} is missing"
    r = run_cli(["check", "--config", example])
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict) and doc, r.stdout
    for secret in _plain_secrets(json.loads(example.read_text())):
        assert secret not in r.stdout and secret not in r.stderr, "secret printed by check"


def test_check_minimal_config_prints_effective_config(tmp_root):
    path = tmp_root / "minimal.json"
    path.write_text(json.dumps({"upstreams": [{"address": "127.0.0.1:3128"}]}))
    r = run_cli(["check", "--config", path])
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    doc = json.loads(r.stdout)
    text = json.dumps(doc)
    # defaults are filled in
    for key in ("listen", "upstreams", "access", "timeouts", "upstream_response", "shutdown",
                "max_header_bytes", "connect_ports"):
        assert key in text, f"{key} missing from effective config:\n{r.stdout}"
    assert "127.0.0.1:3128" in text


def test_check_full_test_config(tmp_root):
    path = tmp_root / "full.json"
    cfg = make_config("127.0.0.1:3128", access={"connect_ports": [443, "8000-8999"]},
                      log={"level": "info", "file": "authshim.log"})
    path.write_text(json.dumps(cfg))
    r = run_cli(["check", "--config", path])
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}"
    json.loads(r.stdout)


UPSTREAM = [{"name": "u", "address": "127.0.0.1:3128"}]

BAD_CONFIGS = {
    "listen-port": ({"listen": ["127.0.0.1:99999"], "upstreams": UPSTREAM}, ["/listen/0"]),
    "listen-not-array": ({"listen": 3128, "upstreams": UPSTREAM}, ["/listen"]),
    "no-upstreams": ({"listen": ["127.0.0.1:3128"]}, ["/upstreams"]),
    "empty-upstreams": ({"upstreams": []}, ["/upstreams"]),
    "upstream-address": ({"upstreams": [{"name": "u", "address": "127.0.0.1:notaport"}]}, ["/upstreams/0"]),
    "duration": ({"upstreams": UPSTREAM, "timeouts": {"connect": "5 parsecs"}}, ["/timeouts/connect"]),
    "cidr": ({"upstreams": UPSTREAM, "access": {"clients": ["300.0.0.0/8"]}}, ["/access/clients/0"]),
    "port-range": ({"upstreams": UPSTREAM, "access": {"connect_ports": [443, "9000-8000"]}},
                   ["/access/connect_ports/1"]),
    "port-number": ({"upstreams": UPSTREAM, "access": {"connect_ports": [70000]}},
                    ["/access/connect_ports/0"]),
    "limit-type": ({"upstreams": UPSTREAM, "limits": {"max_header_bytes": "big"}},
                   ["/limits/max_header_bytes"]),
    "log-level": ({"upstreams": UPSTREAM, "log": {"level": "loud"}}, ["/log/level"]),
    "two-errors": ({"upstreams": UPSTREAM, "timeouts": {"shutdown": "soon"},
                    "log": {"level": "loud"}}, ["/timeouts/shutdown", "/log/level"]),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_check_bad_config_names_the_pointer(tmp_root, name):
    doc, pointers = BAD_CONFIGS[name]
    path = tmp_root / f"bad-{name}.json"
    path.write_text(json.dumps(doc, indent=2))
    r = run_cli(["check", "--config", path])
    assert r.returncode == 1, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    for pointer in pointers:
        # `file: /json/pointer: message` (the pointer may go deeper than the one named here)
        assert re.search(re.escape(f"{path}: {pointer}") + r"(/[^:\s]*)?: \S", r.stderr), \
            f"no '{path}: {pointer}...: message' line in stderr:\n{r.stderr}"


def test_check_syntax_error_names_line_and_column(tmp_root):
    path = tmp_root / "bad-syntax.json"
    path.write_text('{\n  "upstreams": [\n    {"address": "127.0.0.1:3128",}\n  ]\n}\n')
    r = run_cli(["check", "--config", path])
    assert r.returncode == 1, f"exit {r.returncode}\nstderr:\n{r.stderr}"
    assert re.search(re.escape(str(path)) + r":\d+:\d+: \S", r.stderr), r.stderr


def test_check_missing_file(tmp_root):
    path = tmp_root / "does-not-exist.json"
    r = run_cli(["check", "--config", path])
    assert r.returncode == 1, f"exit {r.returncode}\nstderr:\n{r.stderr}"
    assert str(path) in r.stderr, r.stderr


def test_run_refuses_bad_config(tmp_root):
    path = tmp_root / "bad-run.json"
    path.write_text(json.dumps({"upstreams": UPSTREAM, "timeouts": {"connect": "never"}}))
    r = run_cli(["run", "--config", path], timeout=20)
    assert r.returncode not in (0, None) and r.returncode > 0, (r.returncode, r.stderr)
    assert "/timeouts/connect" in r.stderr, r.stderr


# `authshim config set` (what the MSI runs with UPSTREAM, LISTEN_PORT and BYPASS).

_COMMENTED = """// written by hand
{
  "listen": ["127.0.0.1:3128"],   // the proxy
  "upstreams": [
    { "name": "corp", "address": "proxy.corp.example:8080" }
  ],
  "credentials": {"m": {"username": "u", "password": {"plain": "Cfg-SeT-s3cret"}}},
  "log": { "level": "info" }
}
"""


def test_config_set_splices_values_and_keeps_the_rest(tmp_root):
    import os
    f = tmp_root / "config-set.json"
    f.write_text(_COMMENTED)
    os.chmod(f, 0o640)
    link = tmp_root / "config-set-link.json"
    link.symlink_to(f.name)
    r = run_cli(["config", "set", "--config", link, "--upstream", "squid.corp.example:3128",
                 "--listen-port", "3130", "--bypass", "*.corp.example;<local>"])
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Cfg-SeT-s3cret" not in r.stdout + r.stderr
    assert link.is_symlink(), "the symbolic link was replaced by a file"
    assert oct(f.stat().st_mode & 0o777) == oct(0o640), "the mode was not kept"
    assert f.read_text() == _COMMENTED.replace(
        '"127.0.0.1:3128"]', '"127.0.0.1:3130"]').replace(
        "proxy.corp.example:8080", "squid.corp.example:3128").replace(
        '"log": { "level": "info" }\n',
        '"log": { "level": "info" },\n  "winhttp": {\n    "bypass": "*.corp.example;<local>"\n  }\n')
    r = run_cli(["check", "--config", f])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["winhttp"] == {"bypass": "*.corp.example;<local>"}

    # Nothing to change: exit 0, file untouched.
    before = f.read_bytes()
    r = run_cli(["config", "set", "--config", f, "--skip-empty", "--upstream", "",
                 "--listen-port", "", "--bypass", ""])
    assert r.returncode == 0 and "nothing to set" in r.stdout, (r.stdout, r.stderr)
    assert f.read_bytes() == before


@pytest.mark.parametrize("args,code,message", [
    (["--upstream", ""], 2, "--upstream is empty"),
    (["--listen-port", "0"], 2, "from 1 to 65535"),
    (["--listen-port", "3129"], 1, "admin endpoint's default address"),
    (["--bypass", "a; b"], 2, "whitespace"),
    (["--upstream", "ftp://x:1"], 1, "unsupported scheme"),
    (["--upstream", 'p:1" --config "x'], 2, "without spaces, quotes"),
    (["--frobnicate", "1"], 2, "unknown argument"),
], ids=["empty", "port-0", "port-clash", "bypass", "scheme", "quote", "unknown"])
def test_config_set_refuses_and_writes_nothing(tmp_root, args, code, message):
    f = tmp_root / "config-set-refused.json"
    f.write_text(_COMMENTED)
    r = run_cli(["config", "set", "--config", f, *args])
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert "Cfg-SeT-s3cret" not in r.stdout + r.stderr
    assert f.read_text() == _COMMENTED
    assert sorted(p.name for p in tmp_root.glob("config-set-refused.json*")) == \
        ["config-set-refused.json"], "a temporary file was left"


def test_config_set_on_a_broken_file_names_the_place(tmp_root):
    f = tmp_root / "config-set-broken.json"
    f.write_text('{"upstreams": [], }')
    r = run_cli(["config", "set", "--config", f, "--upstream", "h:1"])
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert re.search(r"cannot edit .*: 1:\d+: ", r.stderr), r.stderr


def test_config_given_twice_is_refused(tmp_root):
    # An installer's property value that ends its quoting early could add a second --config.
    f = tmp_root / "twice.json"
    f.write_text(_COMMENTED)
    r = run_cli(["config", "set", "--config", f, "--upstream", "h:1", "--config", f])
    assert r.returncode == 2 and "--config is given more than once" in r.stderr, r.stderr
    assert f.read_text() == _COMMENTED
    r = run_cli(["check", "--config", f, f"--config={f}"])
    assert r.returncode == 2 and "--config is given more than once" in r.stderr, r.stderr
