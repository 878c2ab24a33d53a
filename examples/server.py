"""The local server every example in this folder talks to.

One process serves all of them, on loopback only:

* ``ws://localhost:8765/``: echo, and the messages the seed examples send
  (``Start streaming``, ``VERIFY_AUTH``, ``GET_STATUS``, ``ping``); it picks
  the ``chat`` subprotocol when offered;
* ``ws://localhost:8765/basic``: Basic auth (alice / s3cret), then echo;
* ``ws://localhost:8765/digest``: Digest auth (bob / pa55), then echo;
* ``http://localhost:8765/login`` sets a session cookie that
  ``ws://localhost:8765/whoami`` requires;
* ``ws://localhost:8765/one-reply``: one reply, then a normal close (for the
  reconnect loop);
* ``wss://localhost:8766/``: echo over TLS, with a certificate from a CA it
  writes to ``CA_FILE`` (needs trustme, in the ``demo`` extra);
* ``http://localhost:8767``: an HTTP CONNECT proxy to loopback addresses;
* the Unix socket ``/tmp/websocket.sock`` (POSIX): the same as ``/``.

Run: python examples/server.py
     (after ``pip install '.[demo]'``; Ctrl-C stops it)
``--port 0`` takes free ports; the addresses are printed, one per line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import http
import os
import secrets
import socket
import ssl
import sys
import tempfile

from websockets.asyncio.server import Server, ServerConnection, serve, unix_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

BASIC = ("alice", "s3cret")
DIGEST = ("bob", "pa55")
REALM = "requests_ws examples"
NONCE = secrets.token_hex(8)
SESSIONS: set[str] = set()
LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def default_ca_file() -> str:
    return os.path.join(tempfile.gettempdir(), "requests-ws-examples-ca.pem")


def _unauthorized(connection: ServerConnection, challenge: str) -> Response:
    response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "credentials needed\n")
    response.headers["WWW-Authenticate"] = challenge
    return response


def _digest_ok(header: str) -> bool:
    if not header.startswith("Digest "):
        return False
    fields = {}
    for part in header[len("Digest ") :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value.strip('"')

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    user, password = DIGEST
    ha1 = md5(f"{user}:{REALM}:{password}")
    ha2 = md5(f"GET:{fields.get('uri')}")
    expected = md5(f"{ha1}:{NONCE}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
    return fields.get("username") == user and secrets.compare_digest(
        fields.get("response", ""), expected
    )


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """HTTP before the upgrade: login, auth checks, the cookie check."""
    path = request.path.partition("?")[0]
    if path == "/login":
        session_id = secrets.token_hex(8)
        SESSIONS.add(session_id)
        response = connection.respond(http.HTTPStatus.OK, "logged in\n")
        response.headers["Set-Cookie"] = f"sid={session_id}; Path=/; HttpOnly"
        return response
    if path == "/basic":
        token = base64.b64encode(":".join(BASIC).encode()).decode()
        if request.headers.get("Authorization") != f"Basic {token}":
            return _unauthorized(connection, f'Basic realm="{REALM}"')
    elif path == "/digest":
        if not _digest_ok(request.headers.get("Authorization", "")):
            challenge = f'Digest realm="{REALM}", nonce="{NONCE}", qop="auth", algorithm=MD5'
            return _unauthorized(connection, challenge)
    elif path == "/whoami" and _session_of(request.headers) is None:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "log in first: GET /login\n")
    return None


def _session_of(headers: Headers) -> str | None:
    for pair in headers.get("Cookie", "").split(";"):
        name, _, value = pair.strip().partition("=")
        if name == "sid" and value in SESSIONS:
            return value
    return None


async def seed_and_echo(ws: ServerConnection) -> None:
    """Echo, and answer the seed examples' messages the way they expect."""
    assert ws.request is not None
    async for message in ws:
        if message == "Start streaming":
            for reply in ("one", "two", "stop"):
                await ws.send(reply)
        elif message == "ACK":
            continue
        elif message == "VERIFY_AUTH":
            token = base64.b64encode(b"username:password").decode()
            authorized = ws.request.headers.get("Authorization") == f"Basic {token}"
            await ws.send("AUTH_OK" if authorized else "AUTH_FAILED")
        elif message == "GET_STATUS":
            await ws.send("STATUS_OK")
        elif message == "ping":
            await ws.send("pong")
            await ws.close(1001, "the examples server ends the session")
        else:
            await ws.send(message)


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def whoami(ws: ServerConnection) -> None:
    assert ws.request is not None
    async for _ in ws:
        await ws.send(f"you are session {_session_of(ws.request.headers)}")


async def one_reply(ws: ServerConnection) -> None:
    await ws.recv()
    await ws.send("m")
    await ws.close()


async def route(ws: ServerConnection) -> None:
    assert ws.request is not None
    path = ws.request.path.partition("?")[0]
    handler = {"/whoami": whoami, "/one-reply": one_reply, "/basic": echo, "/digest": echo}
    await handler.get(path, seed_and_echo)(ws)


def select_subprotocol(connection: ServerConnection, offered: list[str]) -> str | None:
    return "chat" if "chat" in offered else None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def connect_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal HTTP CONNECT proxy that tunnels to loopback addresses only."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        writer.close()
        return
    method, _, rest = head.decode("latin-1").partition(" ")
    target = rest.partition(" ")[0]
    host, _, port = target.rpartition(":")
    if method != "CONNECT" or host not in LOOPBACK or not port.isdigit():
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    print(f"proxy: CONNECT {target}", flush=True)
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), port)
    except OSError:
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        writer.close()
        return
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


def _tls_context(ca_file: str) -> ssl.SSLContext | None:
    try:
        import trustme
    except ImportError:
        return None
    ca = trustme.CA()
    ca.cert_pem.write_to_path(ca_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(context)
    return context


def _port(server: Server | asyncio.base_events.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


async def main(args: argparse.Namespace) -> None:
    def next_port(offset: int) -> int:
        return 0 if args.port == 0 else args.port + offset

    options = {"process_request": process_request, "select_subprotocol": select_subprotocol}
    async with contextlib.AsyncExitStack() as stack:
        plain = await stack.enter_async_context(serve(route, args.host, args.port, **options))
        print(f"ws: ws://{args.host}:{_port(plain)}/", flush=True)
        context = _tls_context(args.ca_file)
        if context is not None:
            secure = await stack.enter_async_context(
                serve(route, args.host, next_port(1), ssl=context, **options)
            )
            print(f"wss: wss://{args.host}:{_port(secure)}/", flush=True)
            print(f"ca: {args.ca_file}", flush=True)
        else:
            print("wss: not served (pip install trustme to serve it)", flush=True)
        proxy = await asyncio.start_server(connect_proxy, args.host, next_port(2))
        stack.push_async_callback(proxy.wait_closed)
        stack.callback(proxy.close)
        print(f"proxy: http://{args.host}:{_port(proxy)}", flush=True)
        if args.unix and hasattr(socket, "AF_UNIX"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(args.unix)
            await stack.enter_async_context(unix_serve(route, args.unix, **options))
            stack.callback(os.unlink, args.unix)
            print(f"unix: {args.unix}", flush=True)
        print("ready (Ctrl-C stops)", flush=True)
        await asyncio.Event().wait()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The examples' local server.")
    parser.add_argument("--host", default="localhost", help="address to bind (default localhost)")
    parser.add_argument(
        "--port",
        type=int,
        default=8765,
        help="ws:// port; wss:// and the proxy take the next two (default 8765; 0: free ports)",
    )
    parser.add_argument(
        "--unix",
        default="/tmp/websocket.sock" if hasattr(socket, "AF_UNIX") else "",
        help="Unix socket path ('' for none; default /tmp/websocket.sock)",
    )
    parser.add_argument(
        "--ca-file", default=default_ca_file(), help="where to write the TLS CA certificate"
    )
    return parser.parse_args()


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
