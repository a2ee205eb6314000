"""systemd's Type=notify protocol, without systemd: the test plays the service manager. It binds
the datagram socket that $NOTIFY_SOCKET names and checks what authshim tells it:

- `READY=1` once listening: the port in its STATUS accepts a connection the moment it arrives;
- `RELOADING=1` then `READY=1` around each reload (SIGHUP, POST /reload), also around a refused
  one, whose STATUS says that the previous configuration still serves;
- `STOPPING=1` on SIGTERM, and nothing after it; exit 0;
- an abstract socket (`@name`) works as a path does;
- a socket nobody listens on costs a warning, never the service;
- no notification holds the password (also scanned suite-wide, with every log)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time

import pytest

from harness import admin, secrets
from harness.authshim import make_config
from harness.util import port_accepts, slow_factor, wait_until

USER = "notify-user"
PASSWORD = "Notify-pw-3Kx"


class Manager:
    """The service manager's end: a bound AF_UNIX datagram socket."""

    def __init__(self, name: str):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.received: list[str] = []

    def next(self, timeout: float = 15.0) -> str:
        self.sock.settimeout(timeout * slow_factor())
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            raise AssertionError(f"no notification within {timeout} s; so far: {self.received}")
        text = data.decode()
        self.received.append(text)
        assert PASSWORD not in text
        return text

    def nothing_more(self, wait: float = 1.0):
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return
        raise AssertionError(f"unexpected notification {data!r} after {self.received}")

    def close(self):
        self.sock.close()


def fields(message: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in message.split("\n") if line)


def config(squid_address: str, **sections) -> dict:
    return make_config(squid_address, upstream_name="corp",
                       upstreams=[{"name": "corp", "address": squid_address,
                                   "credentials": "machine"}],
                       credentials={"machine": {"username": USER,
                                                "password": {"env": "NOTIFY_TEST_PW"}}},
                       # trace: the suite-wide secrets scan wants the most output there is
                       log={"level": "trace"}, **sections)


@pytest.fixture
def manager(tmp_root):
    m = Manager(str(tmp_root / f"notify-{os.getpid()}.sock"))
    yield m
    m.close()
    os.unlink(m.name)


def test_ready_reloading_stopping(start_authshim, squid, manager):
    secrets.register(USER, PASSWORD)
    env = {"NOTIFY_SOCKET": manager.name, "NOTIFY_TEST_PW": PASSWORD}
    # The service manager's side runs on a thread (the process is started on the main thread:
    # the harness ties it to its parent thread's life). The moment READY=1 arrives, the port
    # it names must accept.
    seen = {}

    def on_ready():
        try:
            ready = fields(manager.next())
            seen["ready"] = ready
            m = re.fullmatch(r"serving: proxy on 127\.0\.0\.1:(\d+), upstream \"corp\" \(.*\)",
                             ready.get("STATUS", ""))
            seen["port"] = int(m.group(1)) if m else None
            seen["accepts"] = bool(m) and port_accepts(int(m.group(1)))
        except AssertionError as e:
            seen["error"] = str(e)

    waiter = threading.Thread(target=on_ready)
    waiter.start()
    inst = start_authshim(config(squid.address), "notify", env)
    waiter.join()
    assert "error" not in seen, seen
    assert seen["ready"]["READY"] == "1", seen
    assert seen["port"] == inst.port, seen
    assert seen["accepts"], seen

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    inst.proc.send_signal(signal.SIGHUP)
    reloading = fields(manager.next())
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert reloading.pop("RELOADING") == "1"
    # CLOCK_MONOTONIC in microseconds, taken when the reload began.
    assert before <= int(reloading.pop("MONOTONIC_USEC")) <= after
    assert reloading == {"STATUS": "reloading the configuration (SIGHUP)"}
    assert fields(manager.next()) == {"READY": "1",
                                      "STATUS": "serving: configuration reloaded (SIGHUP)"}

    # A refused reload: systemd must still leave "reloading", and the old config serves on.
    good = inst.config_path.read_text()
    inst.config_path.write_text(json.dumps({"upstreams": "not a list"}))
    inst.proc.send_signal(signal.SIGHUP)
    assert fields(manager.next())["RELOADING"] == "1"
    refused = fields(manager.next())
    assert refused["READY"] == "1"
    assert re.fullmatch(r"serving the previous configuration: the reload \(SIGHUP\) was refused, "
                        r"\d+ error\(s\) in the log", refused["STATUS"]), refused
    assert port_accepts(inst.port)
    inst.config_path.write_text(good)

    answer = admin.request(inst.admin_port, "POST", "/reload")
    assert answer.status == 200
    reloading = fields(manager.next())
    assert reloading["STATUS"] == "reloading the configuration (POST /reload)", reloading
    assert fields(manager.next())["STATUS"] == "serving: configuration reloaded (POST /reload)"

    status, _, killed = inst.stop()
    assert not killed and status == 0
    assert fields(manager.next()) == {"STOPPING": "1",
                                      "STATUS": "stopping: letting requests in flight finish"}
    manager.nothing_more()


def test_abstract_socket(start_authshim, squid):
    manager = Manager(f"@authshim-notify-test-{os.getpid()}")
    try:
        inst = start_authshim(make_config(squid.address), "notify-abstract",
                              {"NOTIFY_SOCKET": manager.name})
        assert fields(manager.next())["READY"] == "1"
        inst.stop()
        assert fields(manager.next())["STOPPING"] == "1"
    finally:
        manager.close()


def test_socket_nobody_listens_on_costs_a_warning(start_authshim, squid, tmp_root):
    gone = tmp_root / "nobody-listens-here.sock"
    inst = start_authshim(make_config(squid.address), "notify-gone", {"NOTIFY_SOCKET": str(gone)})
    wait_until(lambda: "could not tell the service manager" in inst.log_text(),
               10 * slow_factor(), what="the warning")
    assert port_accepts(inst.port)
    assert "READY=1" in inst.log_text()  # the warning names what was not delivered
