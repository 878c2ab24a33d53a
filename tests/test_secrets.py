"""No secret in any output: a password in the URI or a proxy URL, a bearer
token and a cookie are planted, and every error path's text (message, repr,
args, the whole chained traceback) and every log record is searched for them."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any

import pytest

import requests_ws
from requests_ws.redaction import redact_headers, redact_url

from .peers.proxies import free_port
from .peers.scripted_http import ScriptedHTTPServer

PASSWORD = "S3cr3t-pw"
TOKEN = "T0ken-abc"
COOKIE = "C00kie-val"
SECRETS = (PASSWORD, TOKEN, COOKIE)


def _all_text(error: BaseException) -> str:
    parts = ["".join(traceback.format_exception(error)), repr(error), repr(error.args)]
    cause: BaseException | None = error
    while cause is not None:
        parts += [str(cause), repr(cause), repr(cause.args)]
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


def _assert_clean(text: str, secrets: tuple[str, ...] = SECRETS) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked in: {text}"


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _connect_and_search(
    uri: str,
    caplog: pytest.LogCaptureFixture,
    log_secrets: tuple[str, ...] = SECRETS,
    **kwargs: Any,
) -> str:
    kwargs.setdefault("headers", {"Authorization": f"Bearer {TOKEN}"})
    kwargs.setdefault("cookies", {"session": COOKIE})
    with pytest.raises(Exception) as info:
        requests_ws.connect(uri, **kwargs)
    text = _all_text(info.value)
    _assert_clean(text)
    _assert_clean("\n".join(record.getMessage() for record in caplog.records), log_secrets)
    return text


def _userinfo(server: ScriptedHTTPServer, path: str = "/") -> str:
    return server.uri(path).replace("://", f"://alice:{PASSWORD}@")


def test_invalid_status(scripted_http: Any, every_log: Any) -> None:
    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: sock.sendall(
            b"HTTP/1.1 403 Forbidden\r\nSet-Cookie: other=x\r\nContent-Length: 2\r\n\r\nno"
        )
    )
    # urllib3 logs the request line (path and query) at DEBUG, as it does for
    # plain requests: a token in the query is masked in our messages only.
    text = _connect_and_search(
        _userinfo(server, f"/feed?token={TOKEN}"), every_log, log_secrets=(PASSWORD, COOKIE)
    )
    assert "alice:***@" in text and "token=***" in text and "403" in text


def test_open_timeout(scripted_http: Any, every_log: Any) -> None:
    server: ScriptedHTTPServer = scripted_http(lambda sock, head: server.stop_event.wait(5))
    text = _connect_and_search(_userinfo(server), every_log, open_timeout=0.3)
    assert "timed out" in text


def test_too_many_redirects(scripted_http: Any, every_log: Any) -> None:
    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: sock.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"
        )
    )
    text = _connect_and_search(_userinfo(server), every_log)
    assert "redirects" in text


def test_wss_to_ws_refusal(scripted_http: Any, tls: Any, every_log: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        target = f"ws://bob:{PASSWORD}@127.0.0.1:{server.port}/plain"
        sock.sendall(
            f"HTTP/1.1 301 Moved\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode()
        )

    server: ScriptedHTTPServer = scripted_http(handler, tls=tls.server_context)
    uri = f"wss://alice:{PASSWORD}@localhost:{server.port}/"
    text = _connect_and_search(uri, every_log, verify=tls.ca_path)
    assert "drop TLS" in text


def test_invalid_uri(every_log: Any) -> None:
    text = _connect_and_search(f"https://alice:{PASSWORD}@example.com/", every_log)
    assert "wss://" in text  # the hint


def test_invalid_message(scripted_http: Any, every_log: Any) -> None:
    server: ScriptedHTTPServer = scripted_http(lambda sock, head: sock.sendall(b"junk\r\n\r\n"))
    _connect_and_search(_userinfo(server), every_log)


def test_refused(every_log: Any) -> None:
    _connect_and_search(f"ws://alice:{PASSWORD}@127.0.0.1:{free_port()}/", every_log)


def test_proxy_refusal_with_credentials(scripted_http: Any, every_log: Any) -> None:
    proxy: ScriptedHTTPServer = scripted_http(
        lambda sock, head: sock.sendall(
            b'HTTP/1.1 407 Auth\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n'
        )
    )
    _connect_and_search(
        "ws://backend.example/", every_log, proxy=f"http://carol:{PASSWORD}@127.0.0.1:{proxy.port}"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"Authorization": f"Bearer {TOKEN}\x00"}},
        {"additional_headers": {"Authorization": f"Bearer {TOKEN}\r\nX: y"}},
        {"additional_headers": [(b"Cookie", f"session={COOKIE}\n".encode())]},
        {"cookies": {"session": f"{COOKIE}\r\n"}},
    ],
)
def test_header_checks_do_not_echo_credentials(kwargs: dict[str, Any], every_log: Any) -> None:
    text = _connect_and_search(
        f"ws://alice:{PASSWORD}@127.0.0.1:{free_port()}/", every_log, **kwargs
    )
    assert "ValueError" in text


def test_reconnect_log_lines(every_log: Any) -> None:
    uri = f"ws://alice:{PASSWORD}@127.0.0.1:{free_port()}/?token={TOKEN}"
    with pytest.raises(ConnectionRefusedError) as info:
        next(requests_ws.reconnect(uri, max_attempts=3, sleep=lambda delay: None))
    _assert_clean(_all_text(info.value))
    lines = [record.getMessage() for record in every_log.records]
    assert any("reconnecting" in line for line in lines), lines
    _assert_clean("\n".join(lines))


def test_redact_url() -> None:
    assert redact_url(f"ws://alice:{PASSWORD}@h:1/p?a=1&token={TOKEN}") == (
        "ws://alice:***@h:1/p?a=1&token=***"
    )
    assert redact_url("ws://alice@h/") == "ws://alice@h/"
    assert redact_url("wss://h/p?access_token=x&api_key=y&q=z") == (
        "wss://h/p?access_token=***&api_key=***&q=z"
    )
    assert PASSWORD not in redact_url(f"ws://a:{PASSWORD}@[::1/")  # unparsable


def test_redact_headers() -> None:
    shown = redact_headers(
        [
            ("Authorization", f"Bearer {TOKEN}"),
            ("Proxy-Authorization", f"Basic {TOKEN}"),
            ("Cookie", f"session={COOKIE}; theme={COOKIE}"),
            ("Set-Cookie", f"session={COOKIE}; Path=/; HttpOnly"),
            ("X-Other", "visible"),
        ]
    )
    assert shown == {
        "Authorization": "Bearer ***",
        "Proxy-Authorization": "Basic ***",
        "Cookie": "session=***; theme=***",
        "Set-Cookie": "session=***; Path=/; HttpOnly",
        "X-Other": "visible",
    }


def test_command_line_error_lines(scripted_http: Any) -> None:
    # (--verbose's own masking belongs to the command line's module.)
    import subprocess
    import sys

    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: sock.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n"
        )
    )
    for uri in (_userinfo(server, f"/?token={TOKEN}"), f"ws://alice:{PASSWORD}@127.0.0.1:9/"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "requests_ws",
                "-H",
                f"Authorization: Bearer {TOKEN}",
                "-H",
                f"Cookie: session={COOKIE}",
                "--no-proxy",
                uri,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode != 0
        assert "error" in result.stderr.lower() + result.stdout.lower()
        _assert_clean(result.stdout + result.stderr)
