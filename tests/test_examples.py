"""Every example runs the way its docstring's ``Run:`` line says, against the
examples server the project ships (examples/server.py), started here on free
loopback ports; environment variables point the examples at those ports."""

from __future__ import annotations

import ast
import os
import pathlib
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@dataclass
class ExamplesServer:
    process: subprocess.Popen[str]
    addresses: dict[str, str]
    lines: list[str] = field(default_factory=list)
    directory: pathlib.Path = ROOT

    def localize(self, text: str) -> str:
        """Point the documented addresses (localhost:8765-8767) at this server."""
        for documented, name in (("8765", "ws"), ("8766", "wss"), ("8767", "proxy")):
            hostport = self.addresses[name].split("://", 1)[1].rstrip("/")
            text = text.replace(f"localhost:{documented}", hostport)
        return text

    @property
    def ws(self) -> str:
        return self.addresses["ws"]

    def saw(self, text: str, timeout: float = 5) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.02)
        return False


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplesServer]:
    directory = tmp_path_factory.mktemp("examples-server")
    command = [sys.executable, str(EXAMPLES / "server.py"), "--host", "127.0.0.1", "--port", "0"]
    # Named as the examples expect it in the temporary directory (TMPDIR=directory).
    command += ["--ca-file", str(directory / "requests-ws-examples-ca.pem")]
    command += ["--unix", str(directory / "ws.sock") if hasattr(os, "fork") else ""]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    addresses: dict[str, str] = {}
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("ready"):
            break
        name, _, value = line.strip().partition(": ")
        addresses[name] = value
    else:
        process.wait()
        pytest.fail("examples server did not start: " + "".join(lines))
    server = ExamplesServer(process, addresses, lines, directory)

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line)

    threading.Thread(target=collect, daemon=True).start()
    yield server
    process.terminate()
    process.wait(10)


def run_line(name: str) -> str:
    """The command of the example's ``Run:`` line."""
    docstring = ast.get_docstring(ast.parse((EXAMPLES / name).read_text())) or ""
    for line in docstring.splitlines():
        if line.startswith("Run: "):
            return line[len("Run: ") :].strip()
    raise AssertionError(f"{name} has no 'Run:' line in its docstring")


def run_example(server: ExamplesServer | None, name: str, timeout: float = 60, **env: str) -> str:
    """Run the example's Run: line as a shell would (python is this Python);
    loopback addresses in it are the test server's."""
    words = shlex.split(run_line(name))
    environment = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    while "=" in words[0]:
        variable, _, value = words.pop(0).partition("=")
        if server is not None:
            value = value.replace("http://localhost:8767", server.addresses["proxy"])
        environment[variable] = value
    assert words[0] == "python", words
    environment.update(env)
    result = subprocess.run(
        [sys.executable, *words[1:]],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_every_example_has_a_run_line_and_a_test() -> None:
    tested = {
        name.removeprefix("test_") + ".py"
        for name in globals()
        if name.startswith("test_") and (EXAMPLES / (name.removeprefix("test_") + ".py")).exists()
    }
    shipped = {path.name for path in EXAMPLES.glob("*.py")}
    assert shipped - tested == {"server.py"}
    for name in shipped:
        assert run_line(name).split()[-1] == f"examples/{name}"


def test_demo() -> None:
    out = run_example(None, "demo.py")
    assert "connect():         Hello, WebSocket!" in out and out.rstrip().endswith("done")


def test_seed_1_basic(examples_server: ExamplesServer) -> None:
    out = run_example(examples_server, "seed_1_basic.py", WS_URI=examples_server.ws)
    assert out.splitlines() == ["Server response: Hello, Server!"]


def test_seed_2_timeouts(examples_server: ExamplesServer) -> None:
    out = run_example(examples_server, "seed_2_timeouts.py", WS_URI=examples_server.ws)
    assert "Response: Hello with timeout!" in out and "Connection latency:" in out


def test_seed_3_iteration(examples_server: ExamplesServer) -> None:
    out = run_example(examples_server, "seed_3_iteration.py", WS_URI=examples_server.ws)
    assert out.splitlines() == ["Received: one", "Received: two", "Received: stop"]


def test_seed_4_threads(examples_server: ExamplesServer) -> None:
    out = run_example(examples_server, "seed_4_threads.py", WS_URI=examples_server.ws)
    assert out.count("Connected") == 3 and "Thread 2: Thread 2, Message 4" in out
    assert "All threads completed" in out and "Error" not in out


def test_seed_5_auth_headers(examples_server: ExamplesServer) -> None:
    out = run_example(examples_server, "seed_5_auth_headers.py", WS_URI=examples_server.ws)
    assert out.splitlines() == [
        "Connected with subprotocol: chat",
        "Authentication successful",
        "Status: STATUS_OK",
    ]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="Unix sockets are POSIX only")
def test_seed_6_unix_socket(examples_server: ExamplesServer) -> None:
    path = examples_server.addresses["unix"]
    out = run_example(examples_server, "seed_6_unix_socket.py", WS_UNIX_PATH=path)
    assert out.splitlines() == ["Connected via Unix socket", "Response: Hello via Unix socket!"]


def test_seed_7_reconnect(examples_server: ExamplesServer) -> None:
    out = run_example(examples_server, "seed_7_reconnect.py", WS_URI=examples_server.ws)
    assert out.splitlines() == [
        "Connection attempt 1",
        "Connected successfully",
        "Connection healthy",
        "Connection lost",
    ]


def test_door_session_auth(examples_server: ExamplesServer) -> None:
    uri = examples_server.ws + "basic"
    assert "hello with session auth" in run_example(
        examples_server, "door_session_auth.py", WS_URI=uri
    )


def test_door_digest_auth(examples_server: ExamplesServer) -> None:
    uri = examples_server.ws + "digest"
    assert "hello with digest auth" in run_example(
        examples_server, "door_digest_auth.py", WS_URI=uri
    )


def test_door_cookies_from_login(examples_server: ExamplesServer) -> None:
    out = run_example(
        examples_server,
        "door_cookies_from_login.py",
        WS_URI=examples_server.ws + "whoami",
        LOGIN_URL=examples_server.ws.replace("ws://", "http://") + "login",
    )
    assert out.startswith("you are session ") and "None" not in out


def test_door_mounted_adapter(examples_server: ExamplesServer) -> None:
    wss = examples_server.addresses["wss"]
    out = run_example(
        examples_server,
        "door_mounted_adapter.py",
        WS_URI=wss,
        CA_FILE=examples_server.addresses["ca"],
    )
    assert "hello through a mounted adapter" in out


def test_door_proxy_from_environment(examples_server: ExamplesServer) -> None:
    out = run_example(examples_server, "door_proxy_from_environment.py", WS_URI=examples_server.ws)
    assert "hello through the environment's proxy" in out
    port = examples_server.ws.rstrip("/").rsplit(":", 1)[1]
    assert examples_server.saw(f"proxy: CONNECT 127.0.0.1:{port}")


def test_reconnect_loop(examples_server: ExamplesServer) -> None:
    uri = examples_server.ws + "one-reply"
    out = run_example(examples_server, "reconnect_loop.py", WS_URI=uri)
    assert out.count("received: m") == 3 and out.count("server closed, reconnecting") == 2
    assert out.rstrip().endswith("done")
