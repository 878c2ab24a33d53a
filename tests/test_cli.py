"""The command-line client, run as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

import requests_ws.__main__ as cli


def run_cli(*args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(
        [sys.executable, "-m", "requests_ws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_script_mode(ws_server: Any) -> None:
    server = ws_server()
    result = run_cli(server.uri, "-x", "hello", "-x", "world")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "world"]


def test_script_mode_timeout_exit_status(raw_server: Any) -> None:
    server = raw_server(lambda peer: peer.expect_close(timeout=10))
    result = run_cli(server.uri, "-x", "unanswered", "-w", "0.5")
    assert result.returncode == 1
    assert "0 of 1 replies" in result.stderr


def spawn_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "requests_ws", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_interactive_lines_are_sent_and_ctrl_d_closes(ws_server: Any) -> None:
    server = ws_server()
    process = spawn_cli(server.uri)
    assert process.stdin is not None
    for line in ("first\n", "second\n"):
        process.stdin.write(line)
        process.stdin.flush()
        time.sleep(0.7)
    stdout, stderr = process.communicate(timeout=10)  # closes stdin: Ctrl-D
    assert process.returncode == 0, stderr
    assert "< first" in stdout and "< second" in stdout


def test_ctrl_c_closes_cleanly(ws_server: Any) -> None:
    server = ws_server()
    process = spawn_cli(server.uri)
    assert process.stderr is not None
    assert process.stderr.readline().startswith("connected to")
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_verbose_shows_handshake_and_frames(ws_server: Any) -> None:
    server = ws_server()
    result = run_cli(server.uri, "-v", "-H", "X-Trace: 7", "-x", "seen")
    assert result.returncode == 0
    assert "> X-Trace: 7" in result.stderr
    assert "< HTTP 101" in result.stderr
    assert "< TEXT 'seen'" in result.stderr


def test_refused_handshake_exit_status_and_message(ws_server: Any) -> None:
    import http

    def forbid(connection: Any, request: Any) -> Any:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")

    server = ws_server(process_request=forbid)
    result = run_cli(server.uri, "-v", "-x", "x")
    assert result.returncode == 2
    assert "403" in result.stderr


def test_options_reach_connect(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    result = run_cli(server.uri, "--cacert", tls.ca_path, "--no-compression", "-x", "tls")
    assert result.returncode == 0, result.stderr
    result = run_cli(server.uri, "-k", "--ping-interval", "0", "-x", "insecure")
    assert result.returncode == 0, result.stderr
    result = run_cli(server.uri, "-x", "unverified")
    assert result.returncode == 2 and "verif" in result.stderr


def test_bad_header_option() -> None:
    with pytest.raises(SystemExit, match="Name: value"):
        cli.main(["ws://127.0.0.1:1/", "-H", "no-colon"])
