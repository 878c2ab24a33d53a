"""The command-line client, run as a user runs it: in a subprocess, against a
real local server, with a pty where the test needs a terminal."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

import requests_ws
import requests_ws.__main__ as cli

from .test_requests_door import basic_auth_check, digest_auth_check


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def run_cli(
    *args: str, stdin: str | None = "", timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "requests_ws", *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environment(),
    )


async def closing_server(ws: ServerConnection) -> None:
    """Echo, and close on request: ``close CODE REASON``."""
    async for message in ws:
        if isinstance(message, str) and message.startswith("close "):
            _, code, reason = message.split(" ", 2)
            await ws.close(int(code), reason)
            return
        await ws.send(message)


# -- script mode ------------------------------------------------------------------


def test_script_mode(ws_server: Any) -> None:
    server = ws_server()
    result = run_cli(server.uri, "-x", "hello", "-x", "world")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "world"]


def test_script_mode_timeout_exit_status(raw_server: Any) -> None:
    server = raw_server(lambda peer: peer.expect_close(timeout=10))
    result = run_cli(server.uri, "-x", "unanswered", "-w", "0.5")
    assert result.returncode == 1
    assert "error: 0 of 1 messages within 0.5 s" in result.stderr


def test_count_with_execute_waits_for_more_replies(ws_server: Any) -> None:
    async def two_replies(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"{message} 1")
            await ws.send(f"{message} 2")

    server = ws_server(two_replies)
    result = run_cli(server.uri, "-x", "m", "-n", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["m 1", "m 2"]


# -- the server closes: the client exits with the code ----------------------------


def test_exits_when_server_closes_normally_while_input_is_open(ws_server: Any) -> None:
    server = ws_server(closing_server)
    process = subprocess.Popen(
        [sys.executable, "-m", "requests_ws", server.uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("first\nclose 1000 done here\n")
    process.stdin.flush()
    # stdin stays open: the client must not wait for more input.
    try:
        stdout, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stdout.splitlines() == ["first"]
    assert "connection closed: 1000 (OK) done here" in stderr


def test_exits_with_1_when_server_closes_with_an_error_code(ws_server: Any) -> None:
    server = ws_server(closing_server)
    result = run_cli(server.uri, stdin="close 1008 bad token\nnever sent\n")
    assert result.returncode == 1
    assert "connection closed: 1008 (policy violation) bad token" in result.stderr
    assert "Traceback" not in result.stderr


def test_going_away_is_a_normal_end(ws_server: Any) -> None:
    server = ws_server(closing_server)
    result = run_cli(server.uri, stdin="close 1001 restarting\n")
    assert result.returncode == 0, result.stderr
    assert "1001 (going away) restarting" in result.stderr


# -- piped input and listen mode --------------------------------------------------


def test_seq_20_prints_all_20_replies(ws_server: Any) -> None:
    server = ws_server()
    lines = "".join(f"{i}\n" for i in range(1, 21))
    result = run_cli("-w", "3", server.uri, stdin=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(i) for i in range(1, 21)]


def test_piped_input_then_waits_for_the_server_to_close(ws_server: Any) -> None:
    async def echo_twenty_then_close(ws: ServerConnection) -> None:
        for _ in range(20):
            await ws.send(await ws.recv())
        await ws.close(1000, "that was all")

    server = ws_server(echo_twenty_then_close)
    lines = "".join(f"{i}\n" for i in range(1, 21))
    result = run_cli(server.uri, stdin=lines)  # no -w: until the server closes
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(i) for i in range(1, 21)]
    assert "1000 (OK) that was all" in result.stderr


def test_stdin_at_end_of_file_keeps_listening(ws_server: Any) -> None:
    async def talk_first(ws: ServerConnection) -> None:
        for n in range(3):
            await ws.send(f"news {n}")
        await ws.close(1000, "")

    server = ws_server(talk_first)
    result = run_cli(server.uri, stdin=None)  # </dev/null, as from cron
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["news 0", "news 1", "news 2"]


def test_count_without_execute_listens(ws_server: Any) -> None:
    async def stream(ws: ServerConnection) -> None:
        for n in range(6):
            await ws.send(f"tick {n}")
        await ws.wait_closed()

    server = ws_server(stream)
    result = run_cli(server.uri, "-n", "4", stdin=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["tick 0", "tick 1", "tick 2", "tick 3"]


def test_listen_mode_ends_after_wait(ws_server: Any) -> None:
    async def greet_then_idle(ws: ServerConnection) -> None:
        await ws.send("hello")
        await ws.wait_closed()

    server = ws_server(greet_then_idle)
    started = time.monotonic()
    result = run_cli(server.uri, "--listen", "-w", "0.5", stdin="ignored\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello"]
    assert time.monotonic() - started < 10


def test_listen_mode_count_not_reached_is_an_error(ws_server: Any) -> None:
    async def one_then_idle(ws: ServerConnection) -> None:
        await ws.send("only one")
        await ws.wait_closed()

    server = ws_server(one_then_idle)
    result = run_cli(server.uri, "-n", "2", "-w", "0.5", stdin=None)
    assert result.returncode == 1
    assert "error: 1 of 2 messages within 0.5 s" in result.stderr


# -- auth -------------------------------------------------------------------------


def test_user_option_sends_basic_auth(ws_server: Any) -> None:
    server = ws_server(process_request=basic_auth_check("alice", "s3cret"))
    result = run_cli(server.uri, "-u", "alice:s3cret", "-x", "in")
    assert result.returncode == 0, result.stderr
    refused = run_cli(server.uri, "-u", "alice:wrong", "-x", "in")
    assert refused.returncode == 2 and "401" in refused.stderr


def test_user_option_with_digest(ws_server: Any) -> None:
    server = ws_server(process_request=digest_auth_check("bob", "pa55"))
    result = run_cli(server.uri, "-u", "bob:pa55", "--digest", "-x", "digest")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["digest"]


# -- verbose ----------------------------------------------------------------------


def test_verbose_shows_handshake_and_frames(ws_server: Any) -> None:
    server = ws_server()
    result = run_cli(server.uri, "-v", "-H", "X-Trace: 7", "-x", "seen")
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert f"> GET / HTTP/1.1  (ws://127.0.0.1:{server.port}/)" in err
    assert f"> Host: 127.0.0.1:{server.port}" in err
    assert "> X-Trace: 7" in err
    assert "< HTTP 101" in err
    assert err.count("> TEXT b'seen' [4 bytes]") == 1  # a preview of what was sent
    assert "< TEXT 'seen'" in err
    assert "> CLOSE 1000" in err


def test_verbose_masks_credentials(ws_server: Any) -> None:
    server = ws_server(process_request=basic_auth_check("alice", "s3cret"))
    uri = server.uri.replace("ws://", "ws://alice:s3cret@")
    result = run_cli(uri, "-v", "-H", "Cookie: sid=topsecret; theme=dark", "-x", "m")
    assert result.returncode == 0, result.stderr
    token = base64.b64encode(b"alice:s3cret").decode()
    for secret in ("s3cret", token, "topsecret", "dark"):
        assert secret not in result.stderr and secret not in result.stdout
    assert "> Authorization: Basic ***" in result.stderr
    assert "> Cookie: sid=***; theme=***" in result.stderr
    assert f"connected to ws://alice:***@127.0.0.1:{server.port}/" in result.stderr


def test_verbose_masks_credentials_in_a_refused_handshake(ws_server: Any) -> None:
    server = ws_server(process_request=digest_auth_check("bob", "pa55"))
    result = run_cli(server.uri, "-v", "-u", "bob:wrong", "--digest", "-x", "m")
    assert result.returncode == 2
    assert "401" in result.stderr and "wrong" not in result.stderr


def test_verbose_shows_every_requests_ws_logger() -> None:
    """Records of the whole hierarchy (issue 10's requests_ws.proxy too) show."""
    stream = io.StringIO()
    logger = logging.getLogger("requests_ws")
    level = logger.level
    handler = cli._enable_verbose(stream)
    try:
        logging.getLogger("requests_ws.proxy").debug("< HTTP/1.1 407 (schemes: Basic)")
        logging.getLogger("requests_ws.client").debug("< PING b''")
        logging.getLogger("unrelated").warning("not ours")
    finally:
        cli._disable_verbose(handler)
    # Left as it was: other tests must not pay for DEBUG records.
    assert logger.level == level and handler not in logger.handlers
    assert stream.getvalue().splitlines() == [
        "[proxy] < HTTP/1.1 407 (schemes: Basic)",
        "< PING b''",
    ]


def test_masking_helpers() -> None:
    assert cli._mask_url("wss://u:p%40ss@h:1/x?y") == "wss://u:***@h:1/x?y"
    assert cli._mask_url("ws://h/") == "ws://h/"
    assert cli._mask_header("Proxy-Authorization", "Negotiate abc") == "Negotiate ***"
    assert cli._mask_header("Set-Cookie", "sid=1; Path=/") == "sid=***; Path=/"
    assert cli._mask_header("X-Other", "visible") == "visible"


# -- arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-H", "X-Evil: a\r\nInjected: 1"], "error: -H contains a CR character"),
        (["-H", "no-colon"], "must look like 'Name: value'"),
        (["-H", "Authorization: Basic c2VjcmV0"], None),
        (["-n", "0"], "error: argument -n/--count: '0' must be 1 or more"),
        (["-w", "-1"], "must be 0 or more seconds"),
        (["--open-timeout", "0"], "must be a number of seconds above 0"),
        (["--digest"], "error: --digest needs -u"),
        (["-u", ":pw"], "error: -u needs a user name"),
        (["--proxy", "ftp://p:1"], "--proxy 'ftp://p:1' must start with http://"),
        (["--proxy", "http://p:1", "--no-proxy"], "exclude each other"),
        (["--cacert", "/nonexistent/ca.pem"], "error: --cacert '/nonexistent/ca.pem': no such"),
        (["--key", "k.pem"], "error: --key needs --cert"),
        (["--listen", "-x", "m"], "error: --listen and -x exclude each other"),
        (["-o", "http://a\nb"], "error: -o contains a LF character"),
        (["--bogus"], "error: unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_before_any_io(arguments: list[str], message: str | None) -> None:
    with socket.socket() as listener:  # nothing may connect to it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        uri = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
        if message is None:  # a valid header with a secret, against a bad URL
            result = run_cli("http://example.invalid/", *arguments)
            assert "c2VjcmV0" not in result.stderr
            message = "error: url must start with ws:// or wss://"
        else:
            result = run_cli(uri, *arguments)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_url_password_is_not_echoed() -> None:
    result = run_cli("http://user:hunter2@example.invalid/")
    assert result.returncode == 2
    assert "hunter2" not in result.stderr and "user:***@" in result.stderr


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"requests-ws {requests_ws.__version__} (requests ")


def test_help_documents_exit_statuses_environment_and_examples() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for text in ("exit status:", "130", "environment:", "HTTPS_PROXY", "NETRC", "examples:"):
        assert text in result.stdout
    assert "--open-timeout SECONDS" in result.stdout and "--digest" in result.stdout


def test_refused_handshake_exit_status_and_message(ws_server: Any) -> None:
    import http

    def forbid(connection: Any, request: Any) -> Any:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")

    server = ws_server(process_request=forbid)
    result = run_cli(server.uri, "-v", "-x", "x")
    assert result.returncode == 2
    assert "403" in result.stderr and "Traceback" not in result.stderr


def test_options_reach_connect(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    result = run_cli(server.uri, "--cacert", tls.ca_path, "--no-compression", "-x", "tls")
    assert result.returncode == 0, result.stderr
    result = run_cli(server.uri, "-k", "--ping-interval", "0", "-x", "insecure")
    assert result.returncode == 0, result.stderr
    result = run_cli(server.uri, "-x", "unverified")
    assert result.returncode == 2 and "verif" in result.stderr


# -- Ctrl-C -----------------------------------------------------------------------


@pytest.fixture
def silent_listener() -> Iterator[tuple[socket.socket, str]]:
    """Accepts TCP connections and never answers the handshake."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener, f"ws://127.0.0.1:{listener.getsockname()[1]}/"


def test_ctrl_c_while_connecting_prints_one_line(
    silent_listener: tuple[socket.socket, str],
) -> None:
    listener, uri = silent_listener
    process = subprocess.Popen(
        [sys.executable, "-m", "requests_ws", uri, "--open-timeout", "60"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    try:
        listener.settimeout(20)
        accepted, _ = listener.accept()
        with accepted:
            accepted.settimeout(20)
            assert accepted.recv(4096).startswith(b"GET / HTTP/1.1")  # now in the handshake
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130
    assert stderr.strip().splitlines() == ["interrupted while connecting"]


# -- a real terminal: prompt, line editing, messages above the typed line ---------


class Terminal:
    """The CLI on a pseudo-terminal; ``screen`` collects everything it printed."""

    def __init__(self, *args: str) -> None:
        import pty as pty_module

        self.master, slave = pty_module.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "requests_ws", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**_environment(), "TERM": "xterm"},
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""

    def read_until(self, text: bytes, timeout: float = 15, count: int = 1) -> bytes:
        deadline = time.monotonic() + timeout
        while self.screen.count(text) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} not shown; screen: {self.screen!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} not shown before exit: {self.screen!r}")
                self.screen += chunk
        return self.screen

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.master, 4096)
                except OSError:
                    pass
        return self.process.wait(timeout=1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def wait_until_blocked_in_select(pid: int, timeout: float = 15) -> None:
    """Wait until the main thread of ``pid`` sleeps in select/poll (Linux)."""
    path = f"/proc/{pid}/syscall"
    if not os.path.exists(path):
        return
    waiting = {"7", "23", "270", "271"}  # poll, select, pselect6, ppoll on x86-64
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as file:
            fields = file.read().split()
        if fields and fields[0] in waiting:
            return
        time.sleep(0.005)
    raise AssertionError(f"the CLI did not wait for input: {fields}")


@pytest.fixture
def terminal() -> Iterator[type[Terminal]]:
    opened: list[Terminal] = []

    class Tracked(Terminal):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            opened.append(self)

    yield Tracked
    for each in opened:
        each.close()


needs_readline = pytest.mark.skipif(sys.platform == "win32", reason="no pty or readline on Windows")


@needs_readline
def test_prompt_line_editing_and_history(ws_server: Any, terminal: type[Terminal]) -> None:
    server = ws_server(closing_server)
    term = terminal(server.uri)
    term.read_until(b"Ctrl-D or Ctrl-C to close")
    term.read_until(b"> ")
    # Type "helo", go left once, insert "l": line editing, not "^[[D" on the wire.
    term.type(b"helo\x1b[Dl\r")
    term.read_until(b"< hello")
    term.read_until(b"> ", count=2)  # the next prompt (keys typed earlier echo raw)
    # Arrow up recalls the previous line from the history.
    term.type(b"\x1b[A\r")
    term.read_until(b"< hello", count=2)
    assert b"\x1b[34m< hello\x1b[39m" in term.screen  # in color on a terminal
    assert b"^[[" not in term.screen
    term.type(b"close 1000 bye\r")
    assert term.wait() == 0
    assert b"connection closed: 1000 (OK) bye" in term.screen


@needs_readline
def test_incoming_message_printed_above_the_line_being_typed(
    ws_server: Any, terminal: type[Terminal]
) -> None:
    release = threading.Event()

    async def push_when_released(ws: ServerConnection) -> None:
        async for message in ws:
            if message == "push":
                await asyncio.to_thread(release.wait, 15)
                await ws.send("pushed")
            else:
                await ws.send(message)

    server = ws_server(push_when_released)
    term = terminal(server.uri)
    term.read_until(b"> ")
    term.type(b"push\r")
    term.read_until(b"> ", count=2)
    term.type(b"half")  # a half-typed line...
    term.read_until(b"half")
    release.set()  # ...when a message arrives
    screen = term.read_until(b"< pushed")
    tail = screen[screen.index(b"< pushed") - 20 :]
    # Saved cursor, a line inserted above the prompt, cursor restored.
    assert b"\x1b7" in tail and b"\x1b[L" in tail and b"\x1b8" in screen
    term.type(b" done\r")  # the half-typed line was kept as it was
    term.read_until(b"< half done")
    # Ctrl-D is a key only once readline has the terminal again (in select()):
    # typed before, the terminal's cooked mode takes it as end-of-file.
    wait_until_blocked_in_select(term.process.pid)
    term.type(b"\x04")  # Ctrl-D on an empty line: one is enough
    assert term.wait() == 0


@needs_readline
def test_ctrl_c_at_the_prompt_closes_cleanly(ws_server: Any, terminal: type[Terminal]) -> None:
    server = ws_server()
    term = terminal(server.uri)
    term.read_until(b"> ")
    term.type(b"partial\x1b[D")
    term.read_until(b"partial\x08")  # readline moved the cursor: it is reading keys
    # CPython's readline sees a signal only while it waits in select(): wait
    # until the main thread is there, as it is whenever a person presses a key.
    wait_until_blocked_in_select(term.process.pid)
    # Ctrl-C: the SIGINT a terminal sends to its foreground process group. (The
    # pty is not made the controlling terminal: a session leader that exits
    # with one may hang in the kernel's hangup, which real shells never see.)
    os.killpg(term.process.pid, signal.SIGINT)
    assert term.wait() == 130
    assert b"Traceback" not in term.screen


@needs_readline
def test_server_close_ends_the_prompt_at_once(ws_server: Any, terminal: type[Terminal]) -> None:
    async def close_after_first(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(1008, "go away")

    server = ws_server(close_after_first)
    term = terminal(server.uri)
    term.read_until(b"> ")
    term.type(b"anything\r")
    assert term.wait() == 1  # no Enter needed after the close
    assert b"connection closed: 1008 (policy violation) go away" in term.screen


@needs_readline
def test_user_without_password_asks_for_it(ws_server: Any, terminal: type[Terminal]) -> None:
    server = ws_server(process_request=basic_auth_check("alice", "s3cret"))
    term = terminal(server.uri, "-u", "alice", "-x", "asked")
    term.read_until(b"password for alice: ")
    term.type(b"s3cret\r")
    assert term.wait() == 0, term.screen
    assert b"asked" in term.screen and b"s3cret" not in term.screen  # not echoed


def test_user_without_password_and_no_terminal_is_an_error() -> None:
    result = run_cli("ws://127.0.0.1:9/", "-u", "alice")
    assert result.returncode == 2
    assert "error: -u USER without a password needs a terminal" in result.stderr
