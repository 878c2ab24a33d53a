"""Portability: the library where ``select.poll`` does not exist (Windows).

Each test starts a fresh interpreter that deletes ``select.poll``,
``select.epoll`` (and ``devpoll``, ``kqueue``) and every ``POLL*``/``EPOLL*``
name from :mod:`select` before anything imports requests_ws, urllib3 or
asyncio, the way the masking tests re-run with the pure-Python masking: once
to import the package and hold one connection, once to run the test modules
that do I/O (the connection, the conformance cases, the faults, the requests
door, the transport and the proxies) again. A Windows-only break fails here on Linux.

Tests that start interpreters of their own (the CLI, the examples) and the
static checks are not re-run: the deletion does not reach a child process.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Set in the child interpreters, so a run can never start itself again.
MARKER = "REQUESTS_WS_PORTABILITY_RUN"

# The modules whose tests wait on sockets through requests_ws.readiness,
# re-run without poll/epoll (the sans-I/O ones never wait; the conformance
# cases run the same waits as these, 770 times). Not this module: that would
# recurse.
RERUN_MODULES = [
    "tests/test_connection.py",
    "tests/test_requests_door.py",
    "tests/test_reconnect.py",
    "tests/test_faults.py",
    "tests/test_hot_path.py",
    "tests/test_review_hot.py",
]
# Bound by memory and CPU, not by how the connection waits: once is enough.
NOT_RERUN = [
    "tests/test_faults.py::test_a_million_one_byte_fragments_cost_about_the_message",
    "tests/test_faults.py::test_endless_empty_fragments_fail",
]

# Runs first in the child: what a platform without poll()/epoll() looks like.
REMOVE_POLL = f"""
import os, select, sys
if os.environ.get({MARKER!r}) != "1":
    raise SystemExit("the portability bootstrap must run with {MARKER}=1")
for _name in list(vars(select)):
    if _name in ("poll", "epoll", "devpoll", "kqueue", "kevent") or _name.startswith(
        ("POLL", "EPOLL", "KQ_")
    ):
        delattr(select, _name)
for _module in ("selectors", "asyncio", "urllib3", "requests", "requests_ws"):
    if any(name == _module or name.startswith(_module + ".") for name in sys.modules):
        raise SystemExit(_module + " was imported before poll/epoll were removed")
"""

# Fails the child's pytest session if poll()/epoll() came back or the
# connections used them after all.
GUARD_PLUGIN = """
import select

class PollStaysRemoved:
    def pytest_sessionfinish(self, session, exitstatus):
        import requests_ws.readiness as readiness
        back = [name for name in ("poll", "epoll", "POLLIN", "EPOLLIN") if hasattr(select, name)]
        probe = readiness.Readiness(0, None)
        if back or probe.read_poll is not None:
            print("PORTABILITY GUARD: select names are back:", back)
            session.exitstatus = 1
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env[MARKER] = "1"
    return env


def _run_child(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", REMOVE_POLL + code],
        cwd=ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_not_inside_a_portability_run() -> None:
    """The re-run below never collects this module; if it ever did, fail."""
    assert os.environ.get(MARKER) != "1", "test_portability ran inside its own re-run"


def test_import_and_one_connection_without_poll() -> None:
    code = """
import socket, threading, base64, hashlib
import requests_ws
from requests_ws.readiness import Readiness
assert not hasattr(select, "poll") and not hasattr(select, "epoll")
assert Readiness(0, None).read_poll is None

server, client = socket.socketpair()
server.settimeout(10)
def answer():
    request = b""
    while b"\\r\\n\\r\\n" not in request:
        request += server.recv(4096)
    key = [line.split(b":", 1)[1].strip() for line in request.split(b"\\r\\n")
           if line.lower().startswith(b"sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    server.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\n"
                   b"Connection: Upgrade\\r\\nSec-WebSocket-Accept: " + accept + b"\\r\\n\\r\\n"
                   + b"\\x81\\x05hello")
thread = threading.Thread(target=answer)
thread.start()
ws = requests_ws.connect("ws://localhost/", sock=client, compression=None, close_timeout=5)
thread.join()
assert ws.recv(timeout=5) == "hello"
server.sendall(b"\\x88\\x02\\x03\\xe8")
data = b""
while len(data) < 8:  # the client's masked close frame: 2 + 4 + 2 octets
    data += server.recv(64)
assert data[0] == 0x88, data
server.shutdown(socket.SHUT_WR)
try:
    ws.recv(timeout=5)
except requests_ws.ConnectionClosedOK:
    pass
else:
    raise AssertionError("the connection did not close")
ws.close()
server.close()
assert ws.close_code == 1000
print("PORTABLE-OK")
"""
    result = _run_child(code, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "PORTABLE-OK" in result.stdout


@pytest.mark.timeout(900)  # the child's own bound (subprocess timeout below), not pytest's 120 s
def test_io_modules_pass_without_poll() -> None:
    """The modules that do I/O pass again with poll()/epoll() removed."""
    code = (
        GUARD_PLUGIN
        + """
import pytest
sys.exit(pytest.main(
    ["-q", "-p", "no:cacheprovider", "--ignore=tests/test_portability.py", *sys.argv[1:]],
    plugins=[PollStaysRemoved()],
))
"""
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            REMOVE_POLL + code,
            *RERUN_MODULES,
            *[f"--deselect={test}" for test in NOT_RERUN],
        ],
        cwd=ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout[-4000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None and int(passed.group(1)) > 0, output
    # Nothing failed, nothing deselected but NOT_RERUN; under CI nothing
    # skipped either (as in the main run, a missing system tool fails there).
    assert not re.search(r"failed|error", summary), output
    deselected = re.search(r"(\d+) deselected", summary)
    assert deselected is not None and int(deselected.group(1)) == len(NOT_RERUN), output
    if os.environ.get("CI", "").lower() == "true":
        assert "skipped" not in summary, output
