"""Every example runs, as a user would run it, against a local server."""

from __future__ import annotations

import http
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .test_requests_door import basic_auth_check, digest_auth_check

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, timeout: float = 60, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


async def seed_server(ws: ServerConnection) -> None:
    """Answers the way the seed examples expect a server to."""
    async for message in ws:
        if message == "Start streaming":
            for reply in ("one", "two", "stop"):
                await ws.send(reply)
        elif message == "ACK":
            continue
        elif message == "VERIFY_AUTH":
            assert ws.request is not None
            authorized = "Authorization" in ws.request.headers
            await ws.send("AUTH_OK" if authorized else "AUTH_FAILED")
        elif message == "GET_STATUS":
            await ws.send("STATUS_OK")
        elif message == "ping":
            await ws.send("pong")
            await ws.close()
        else:
            await ws.send(message)


@pytest.fixture
def seed_uri(ws_server: Any) -> str:
    def select(connection: ServerConnection, offered: Any) -> Any:
        return "chat" if "chat" in offered else None

    uri: str = ws_server(seed_server, select_subprotocol=select).uri
    return uri


def test_seed_1_basic(seed_uri: str) -> None:
    assert "Server response: Hello, Server!" in run_example("seed_1_basic.py", WS_URI=seed_uri)


def test_seed_2_timeouts(seed_uri: str) -> None:
    out = run_example("seed_2_timeouts.py", WS_URI=seed_uri)
    assert "Response: Hello with timeout!" in out and "Connection latency:" in out


def test_seed_3_iteration(seed_uri: str) -> None:
    out = run_example("seed_3_iteration.py", WS_URI=seed_uri)
    assert out.splitlines() == ["Received: one", "Received: two", "Received: stop"]


def test_seed_4_threads(seed_uri: str) -> None:
    out = run_example("seed_4_threads.py", WS_URI=seed_uri)
    assert out.count("Connected") == 3 and "Thread 2: Thread 2, Message 4" in out
    assert "All threads completed" in out and "Error" not in out


def test_seed_5_auth_headers(seed_uri: str) -> None:
    out = run_example("seed_5_auth_headers.py", WS_URI=seed_uri)
    assert "Connected with subprotocol: chat" in out
    assert "Authentication successful" in out and "Status: STATUS_OK" in out


def test_seed_6_unix_socket(ws_server: Any, tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "seed.sock")
    ws_server(seed_server, unix_path=path)
    out = run_example("seed_6_unix_socket.py", WS_UNIX_PATH=path)
    assert "Response: Hello via Unix socket!" in out


def test_seed_7_reconnect(seed_uri: str) -> None:
    out = run_example("seed_7_reconnect.py", WS_URI=seed_uri)
    assert "Connected successfully" in out and "Connection healthy" in out
    assert "Connection lost" in out


def test_door_session_auth(ws_server: Any) -> None:
    server = ws_server(process_request=basic_auth_check("alice", "s3cret"))
    assert "hello with session auth" in run_example("door_session_auth.py", WS_URI=server.uri)


def test_door_digest_auth(ws_server: Any) -> None:
    server = ws_server(process_request=digest_auth_check("bob", "pa55"))
    assert "hello with digest auth" in run_example("door_digest_auth.py", WS_URI=server.uri)


def test_door_proxy_from_environment(ws_server: Any, squid: Any) -> None:
    server = ws_server()
    out = run_example(
        "door_proxy_from_environment.py",
        WS_URI=server.uri,
        HTTP_PROXY=f"http://127.0.0.1:{squid.plain}",
    )
    assert "hello through the environment's proxy" in out
    from .test_proxies import count_tunnels

    assert count_tunnels(squid, server.port, 1) >= 1


def test_door_cookies_from_login(ws_server: Any) -> None:
    def login(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/login":
            response = connection.respond(http.HTTPStatus.OK, "logged in\n")
            response.headers["Set-Cookie"] = "sid=user-42; Path=/"
            return response
        if "sid=user-42" not in request.headers.get("Cookie", ""):
            return connection.respond(http.HTTPStatus.FORBIDDEN, "log in first\n")
        return None

    async def whoami(ws: ServerConnection) -> None:
        async for _ in ws:
            assert ws.request is not None
            await ws.send(f"you are {ws.request.headers['Cookie']}")

    server = ws_server(whoami, process_request=login)
    out = run_example(
        "door_cookies_from_login.py",
        WS_URI=server.uri,
        LOGIN_URL=server.uri.replace("ws://", "http://") + "login",
    )
    assert "you are sid=user-42" in out


def test_door_mounted_adapter(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    out = run_example("door_mounted_adapter.py", WS_URI=server.uri, CA_FILE=tls.ca_path)
    assert "hello through a mounted adapter" in out


def test_reconnect_loop(ws_server: Any) -> None:
    async def one_reply_then_close(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("m")
        await ws.close()

    server = ws_server(one_reply_then_close)
    out = run_example("reconnect_loop.py", WS_URI=server.uri, WANTED="3")
    assert out.count("received: m") == 3 and out.count("server closed, reconnecting") == 2
    assert out.rstrip().endswith("done")
