"""reconnect(): backoff against a server that goes down and comes back, and
the rule of which errors are retried."""

from __future__ import annotations

import http
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

import requests_ws
from requests_ws.reconnecting import is_retryable

from .peers.proxies import free_port
from .peers.ws_peer import WsPeer


def test_server_down_then_back() -> None:
    port = free_port()
    delays: list[float] = []
    peers: list[WsPeer] = []

    def start_later() -> None:
        time.sleep(0.6)
        peers.append(WsPeer(port=port).start())

    threading.Thread(target=start_later, daemon=True).start()

    def sleep(delay: float) -> None:
        delays.append(delay)
        time.sleep(delay)

    try:
        for ws in requests_ws.reconnect(
            f"ws://127.0.0.1:{port}/", min_delay=0.1, max_delay=0.3, sleep=sleep
        ):
            ws.send("back")
            assert ws.recv(timeout=5) == "back"
            break
    finally:
        for peer in peers:
            peer.stop()
    assert len(delays) >= 2, "it should have retried while the server was down"
    assert all(0 <= delay <= 0.3 for delay in delays)


def test_4xx_is_not_retried(ws_server: Any) -> None:
    def forbid(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")

    server = ws_server(process_request=forbid)
    slept: list[float] = []
    with pytest.raises(requests_ws.InvalidStatus):
        next(requests_ws.reconnect(server.uri, sleep=slept.append))
    assert slept == []


def test_5xx_is_retried_up_to_max_attempts(ws_server: Any) -> None:
    def unavailable(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "busy\n")

    server = ws_server(process_request=unavailable)
    slept: list[float] = []
    with pytest.raises(requests_ws.InvalidStatus):
        next(requests_ws.reconnect(server.uri, max_attempts=3, sleep=slept.append))
    assert len(slept) == 2


def test_error_closure_backs_off_normal_closure_does_not(ws_server: Any) -> None:
    closes = iter([1011, 1000, 1000])

    async def handler(ws: ServerConnection) -> None:
        await ws.close(next(closes))

    server = ws_server(handler)
    slept: list[float] = []
    reconnecting = requests_ws.reconnect(server.uri, min_delay=0.01, sleep=slept.append)
    for connections, ws in enumerate(reconnecting, start=1):
        try:
            for _ in ws:
                pass
        except requests_ws.ConnectionClosedError:
            pass
        if connections == 3:
            break
    assert len(slept) == 1


def test_retry_rule() -> None:
    response = requests.Response()
    response.status_code = 502
    assert is_retryable(requests_ws.InvalidStatus(response))
    response.status_code = 404
    assert not is_retryable(requests_ws.InvalidStatus(response))
    assert not is_retryable(requests_ws.InvalidURI("x", "bad"))
    assert not is_retryable(requests_ws.NegotiationError("no"))
    assert not is_retryable(requests.exceptions.SSLError("verify failed"))
    assert is_retryable(requests.exceptions.ConnectionError("refused"))
    assert is_retryable(requests_ws.OpenTimeout("slow"))
    assert is_retryable(requests_ws.ProxyError("proxy down"))
    assert is_retryable(requests_ws.ConnectionClosedError(None, None))
    assert not is_retryable(ValueError("bug"))
    with pytest.raises(ValueError):
        next(requests_ws.reconnect("ws://x/", factor=0.5))


# -- websockets 17's surface: process_exception, reconnect_delays, with, unix ----------


def _forbidding_server(ws_server: Any) -> WsPeer:
    def forbid(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")

    server: WsPeer = ws_server(process_request=forbid)
    return server


def test_process_exception_can_retry_what_the_default_would_not(ws_server: Any) -> None:
    server = _forbidding_server(ws_server)
    seen: list[Exception] = []

    def retry_twice(exc: Exception) -> Exception | None:
        seen.append(exc)
        return None if len(seen) < 3 else exc

    slept: list[float] = []
    with pytest.raises(requests_ws.InvalidStatus) as info:
        next(requests_ws.reconnect(server.uri, process_exception=retry_twice, sleep=slept.append))
    assert len(seen) == 3 and len(slept) == 2
    assert info.value is seen[-1]


def test_process_exception_can_replace_the_error(ws_server: Any) -> None:
    server = _forbidding_server(ws_server)

    class Fatal(Exception):
        pass

    with pytest.raises(Fatal) as info:
        next(requests_ws.reconnect(server.uri, process_exception=lambda exc: Fatal("stop")))
    assert isinstance(info.value.__cause__, requests_ws.InvalidStatus)


def test_reconnect_delays_are_used_in_order() -> None:
    slept: list[float] = []

    def delays() -> Iterator[float]:
        yield from (0.01, 0.02, 0.03, 0.04)

    uri = f"ws://127.0.0.1:{free_port()}/"
    with pytest.raises(requests.exceptions.ConnectionError):
        next(
            requests_ws.reconnect(uri, reconnect_delays=delays, max_attempts=4, sleep=slept.append)
        )
    assert slept == [0.01, 0.02, 0.03]


def test_default_process_exception_and_backoff() -> None:
    from requests_ws.reconnecting import backoff, process_exception

    error = requests_ws.InvalidURI("ws://x", "bad")
    assert process_exception(error) is error
    assert process_exception(requests.exceptions.ConnectionError("refused")) is None
    waits = backoff(min_delay=1, max_delay=4, factor=2)
    bounds = [1, 2, 4, 4, 4]
    assert all(0 <= next(waits) <= bound for bound in bounds)


def test_context_manager_opens_one_connection_and_closes_it(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.reconnect(server.uri) as ws:
        ws.send("with")
        assert ws.recv(timeout=5) == "with"
    assert ws.closed


def test_context_manager_retries_the_opening() -> None:
    port = free_port()
    peers: list[WsPeer] = []
    attempts: list[float] = []

    def sleep(delay: float) -> None:
        attempts.append(delay)
        if len(attempts) == 2:  # the server comes up during the second wait
            peers.append(WsPeer(port=port).start())

    try:
        with requests_ws.reconnect(f"ws://127.0.0.1:{port}/", sleep=sleep) as ws:
            ws.send("late")
            assert ws.recv(timeout=5) == "late"
    finally:
        for peer in peers:
            peer.stop()
    assert len(attempts) == 2


def test_unix_reconnect(tmp_path: Any) -> None:
    path = str(tmp_path / "ws.sock")
    peer = WsPeer(unix_path=path).start()
    try:
        for ws in requests_ws.unix_reconnect(path):
            ws.send("unix")
            assert ws.recv(timeout=5) == "unix"
            break
        with requests_ws.unix_reconnect(path) as ws:
            assert ws.response.status_code == 101
    finally:
        peer.stop()


def test_retry_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="requests_ws.reconnect")
    uri = f"ws://127.0.0.1:{free_port()}/"
    with pytest.raises(requests.exceptions.ConnectionError):
        next(requests_ws.reconnect(uri, max_attempts=2, sleep=lambda delay: None))
    # Only reconnect()'s own records: a server of an earlier test may still log its teardown.
    lines = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("requests_ws.reconnect")
    ]
    assert len(lines) == 1 and "reconnecting in" in lines[0] and uri in lines[0], lines
