"""reconnect(): backoff against a server that goes down and comes back, and
the rule of which errors are retried."""

from __future__ import annotations

import http
import threading
import time
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
