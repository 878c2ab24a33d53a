"""Inputs are checked before any I/O, each error naming the argument; every
door is typed so that a type checker catches a misspelled keyword."""

from __future__ import annotations

import os
import pathlib
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import requests

import requests_ws

from .peers.scripted_http import ScriptedHTTPServer

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def server(scripted_http: Any) -> ScriptedHTTPServer:
    """A server that must never see a connection."""
    peer: ScriptedHTTPServer = scripted_http(lambda sock, head: None)
    return peer


def _refused_before_io(
    server: ScriptedHTTPServer,
    error: type[Exception],
    words: str,
    call: Callable[[], Any],
) -> str:
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value), str(info.value)
    assert server.connections == 0, "the check came after I/O"
    return str(info.value)


def test_ssl_with_a_ws_uri(server: ScriptedHTTPServer) -> None:
    context = ssl.create_default_context()
    _refused_before_io(
        server, ValueError, "ssl=", lambda: requests_ws.connect(server.uri(), ssl=context)
    )


@pytest.mark.parametrize(
    "proxy",
    [None, True, "http://127.0.0.1:9", "socks5://127.0.0.1:9"],
)
def test_proxy_ssl_without_an_https_proxy(server: ScriptedHTTPServer, proxy: Any) -> None:
    context = ssl.create_default_context()
    _refused_before_io(
        server,
        ValueError,
        "proxy_ssl=",
        lambda: requests_ws.connect(server.uri(), proxy=proxy, proxy_ssl=context),
    )


def test_unix_connect_path_and_sock(server: ScriptedHTTPServer, tmp_path: Any) -> None:
    left, right = socket.socketpair()
    try:
        _refused_before_io(
            server,
            ValueError,
            "path= or sock=",
            lambda: requests_ws.unix_connect(str(tmp_path / "s"), sock=left),
        )
        _refused_before_io(server, ValueError, "path=", lambda: requests_ws.unix_connect())
        _refused_before_io(
            server,
            ValueError,
            "path=",
            lambda: requests_ws.unix_reconnect(),
        )
    finally:
        left.close()
        right.close()


def test_subprotocols_as_a_string(server: ScriptedHTTPServer) -> None:
    _refused_before_io(
        server,
        TypeError,
        "subprotocols",
        lambda: requests_ws.connect(server.uri(), subprotocols="chat"),
    )


BAD_VALUES = ["a\rb", "a\nb", "a\x00b"]


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize(
    ("argument", "build"),
    [
        ("additional_headers", lambda bad: {"additional_headers": {"X-A": bad}}),
        ("additional_headers", lambda bad: {"additional_headers": [("X-A", bad.encode())]}),
        ("additional_headers", lambda bad: {"additional_headers": [(b"X-A", bad.encode())]}),
        ("headers", lambda bad: {"headers": {"X-A": bad}}),
        ("headers", lambda bad: {"headers": {"X-A": bad.encode()}}),
        ("origin", lambda bad: {"origin": f"http://{bad}"}),
        ("user_agent_header", lambda bad: {"user_agent_header": f"agent/{bad}"}),
        ("subprotocols", lambda bad: {"subprotocols": [f"chat{bad}"]}),
        ("cookies", lambda bad: {"cookies": {"name": bad}}),
    ],
)
def test_cr_lf_nul_in_any_header_source(
    server: ScriptedHTTPServer, argument: str, build: Callable[[str], dict[str, Any]], bad: str
) -> None:
    _refused_before_io(
        server, ValueError, argument, lambda: requests_ws.connect(server.uri(), **build(bad))
    )


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_cr_lf_nul_from_the_session(server: ScriptedHTTPServer, bad: str) -> None:
    session = requests.Session()
    session.headers["X-Session"] = bad
    _refused_before_io(
        server,
        ValueError,
        "session.headers",
        lambda: requests_ws.ws_connect(session, server.uri()),
    )
    session = requests.Session()
    session.cookies.set("name", bad)
    _refused_before_io(
        server,
        ValueError,
        "session.cookies",
        lambda: requests_ws.ws_connect(session, server.uri()),
    )


def test_bad_header_name(server: ScriptedHTTPServer) -> None:
    _refused_before_io(
        server,
        ValueError,
        "additional_headers",
        lambda: requests_ws.connect(server.uri(), additional_headers={"Bad Name": "x"}),
    )
    _refused_before_io(
        server,
        TypeError,
        "additional_headers",
        lambda: requests_ws.connect(server.uri(), additional_headers={"X": 5}),
    )


def test_bytes_headers_are_sent(ws_server: Any) -> None:
    peer = ws_server()
    with requests_ws.connect(peer.uri, additional_headers=[(b"X-Bytes", b"value")]) as ws:
        assert ws.request.headers["X-Bytes"] == "value"
    assert peer.request_headers[-1]["X-Bytes"] == "value"


@pytest.mark.parametrize(
    "door",
    [
        lambda uri, **kw: requests_ws.connect(uri, **kw),
        lambda uri, **kw: requests_ws.ws_connect(requests.Session(), uri, **kw),
        lambda uri, **kw: requests_ws.Session().ws_connect(uri, **kw),
        lambda uri, **kw: requests_ws.unix_connect("/nonexistent", uri, **kw),
        lambda uri, **kw: requests_ws.reconnect(uri, **kw),
        lambda uri, **kw: requests_ws.unix_reconnect("/nonexistent", uri, **kw),
    ],
)
def test_misspelled_keyword_names_the_parameter(
    server: ScriptedHTTPServer, door: Callable[..., Any]
) -> None:
    text = _refused_before_io(
        server, TypeError, "'open_timeout'", lambda: door(server.uri(), opne_timeout=1)
    )
    assert "opne_timeout" in text
    text = _refused_before_io(
        server, TypeError, "open_timeout=", lambda: door(server.uri(), timeout=5)
    )
    assert "recv(timeout=)" in text


def test_type_checker_catches_misspelled_keywords(tmp_path: Any) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        textwrap.dedent(
            """
            import requests
            import requests_ws

            requests_ws.connect("ws://h/", opne_timeout=1)
            requests_ws.ws_connect(requests.Session(), "ws://h/", opne_timeout=1)
            requests_ws.Session().ws_connect("ws://h/", opne_timeout=1)
            requests_ws.unix_connect("/p", opne_timeout=1)
            requests_ws.reconnect("ws://h/", opne_timeout=1)
            requests_ws.unix_reconnect("/p", opne_timeout=1)
            requests_ws.connect("ws://h/", open_timeout="soon")
            requests_ws.connect("ws://h/", open_timeout=1, max_queue=(4, 2))
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == [5, 6, 7, 8, 9, 10, 11], result.stdout
