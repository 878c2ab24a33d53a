"""``requests_ws.transport.open_upgraded`` on its own, against real sockets.

The WebSocket peers are ``websockets`` asyncio servers (``ws_server``,
with ``process_request``/``process_response`` hooks for auth, redirects and
cookies) or small scripted servers defined here; the CONNECT proxy is a tiny
threaded one defined here too (the end-to-end proxy tests with squid, dante
and friends live in ``test_proxies.py``).  Frames are built by hand: this
file tests the transport, not the protocol.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import http
import os
import re
import socket
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.adapters
import requests.auth
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

import requests_ws
from requests_ws.deadline import Deadline
from requests_ws.exceptions import (
    InvalidHandshake,
    InvalidProxy,
    InvalidStatus,
    OpenTimeout,
    ProxyError,
)
from requests_ws.routes import RouteOptions
from requests_ws.transport import Upgraded, open_upgraded

# -- helpers -----------------------------------------------------------------------


def upgrade_headers(**extra: str | None) -> dict[str, str | None]:
    headers: dict[str, str | None] = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    headers.update(extra)
    return headers


def upgrade(uri: str, session: requests.Session | None = None, **kwargs: Any) -> Upgraded:
    """open_upgraded with the WebSocket headers and no environment proxy."""
    requests_kwargs = kwargs.pop("requests_kwargs", {})
    headers = kwargs.pop("headers", upgrade_headers())
    open_timeout = kwargs.pop("open_timeout", 5)
    return open_upgraded(
        session or requests.Session(),
        uri,
        headers=headers,
        requests_kwargs=requests_kwargs,
        route_options=RouteOptions(**kwargs),
        deadline=Deadline(open_timeout, uri),
    )


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked, final frame with a payload shorter than 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def server_frame(payload: bytes, opcode: int = 1) -> bytes:
    return bytes([0x80 | opcode, len(payload)]) + payload


def read_frame(up: Upgraded, buffer: bytearray) -> bytes:
    """Read one short unmasked server frame: leftover first, then the stream."""
    up.sock.settimeout(5)
    while len(buffer) < 2 or len(buffer) < 2 + (buffer[1] & 0x7F):
        chunk = up.sock.recv(4096)
        assert chunk, "the server closed the connection"
        buffer += chunk
    length = buffer[1] & 0x7F
    payload = bytes(buffer[2 : 2 + length])
    del buffer[: 2 + length]
    return payload


def echo(up: Upgraded, text: str = "hello") -> None:
    """One round trip over the upgraded stream, then a clean close."""
    buffer = bytearray(up.leftover)
    up.sock.sendall(client_frame(text.encode()))
    assert read_frame(up, buffer) == text.encode()
    up.sock.sendall(client_frame(b"\x03\xe8", opcode=8))
    read_frame(up, buffer)  # the close frame echoed
    up.sock.close()


def http_ok(connection: ServerConnection, request: Request) -> Response | None:
    """Answer plain HTTP requests with 200, upgrade the others."""
    if request.headers.get("Upgrade") is None:
        return connection.respond(http.HTTPStatus.OK, "plain http\n")
    return None


@pytest.fixture
def ws_server(ws_server: Callable[..., Any]) -> Callable[..., Any]:
    """The shared websockets peer; ``seen`` holds the request headers, recorded
    before the server answers (the shared ``request_headers`` are recorded after
    the 101 went out, which races with a client that looks right after it)."""

    def start(*args: Any, process_request: Any = None, **kwargs: Any) -> Any:
        seen: list[Any] = []

        def record(connection: ServerConnection, request: Request) -> Response | None:
            seen.append(request.headers)
            return process_request(connection, request) if process_request else None

        peer = ws_server(*args, process_request=record, **kwargs)
        peer.seen = seen
        return peer

    return start


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_fds(limit: int) -> int:
    deadline = time.monotonic() + 3
    count = fd_count()
    while count > limit and time.monotonic() < deadline:
        time.sleep(0.02)
        count = fd_count()
    return count


class ScriptedServer:
    """A loopback TCP server running ``script(sock, request_head)`` per connection."""

    def __init__(
        self,
        script: Callable[[socket.socket, bytes], None],
        ssl_context: ssl.SSLContext | None = None,
        read_request: bool = True,
    ) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.read_request = read_request
        self.heads: list[bytes] = []
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            sock.settimeout(10)
            head = b""
            while self.read_request and b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.heads.append(head)
            self.script(sock, head)
        except OSError:
            pass
        finally:
            sock.close()

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for thread in self.threads:
            thread.join(10)
        self.accepter.join(10)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Callable[[socket.socket, bytes], None], **kwargs: Any) -> ScriptedServer:
        server = ScriptedServer(script, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def drain(sock: socket.socket, head: bytes = b"") -> None:
    """Read and ignore everything until the client closes: a silent peer."""
    while sock.recv(4096):
        pass


def accept_key(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "sec-websocket-key":
            digest = hashlib.sha1(
                value.strip().encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            ).digest()
            return base64.b64encode(digest).decode()
    return ""


def switching(head: bytes) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(head)}\r\n\r\n"
    ).encode()


class ConnectProxy:
    """A tiny threaded CONNECT proxy on loopback.

    ``refuse`` answers every CONNECT with that status line; ``credentials``
    requires Proxy-Authorization Basic; ``silent`` never answers.
    """

    def __init__(
        self,
        *,
        refuse: str | None = None,
        credentials: tuple[str, str] | None = None,
        silent: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.refuse = refuse
        self.credentials = credentials
        self.silent = silent
        self.ssl_context = ssl_context
        self.heads: list[str] = []
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        host = "localhost" if self.ssl_context is not None else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            if self.ssl_context is not None:
                client = self.ssl_context.wrap_socket(client, server_side=True)
            self.sockets.append(client)
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(1)
                if not chunk:
                    return
                head += chunk
            text = head.decode("latin-1")
            self.heads.append(text)
            if self.silent:
                self.stopping.wait(10)
                return
            if self.refuse is not None:
                client.sendall(
                    f'HTTP/1.1 {self.refuse}\r\nProxy-Authenticate: Basic realm="t"\r\n'
                    "Content-Length: 0\r\n\r\n".encode()
                )
                return
            if self.credentials is not None:
                expected = base64.b64encode(":".join(self.credentials).encode()).decode()
                if f"Proxy-Authorization: Basic {expected}" not in text:
                    client.sendall(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="t"\r\nContent-Length: 0\r\n\r\n'
                    )
                    return
            method, target, _ = text.split(" ", 2)
            assert method == "CONNECT", text
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)), 5)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            client.settimeout(None)
            upstream.settimeout(None)
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join(10)
        except OSError:
            pass
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (target, source):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass
        for thread in self.threads:
            thread.join(10)
        self.accepter.join(10)


@pytest.fixture
def connect_proxy() -> Iterator[Callable[..., ConnectProxy]]:
    proxies: list[ConnectProxy] = []

    def start(**kwargs: Any) -> ConnectProxy:
        proxy = ConnectProxy(**kwargs)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- plain ws, wss and the result --------------------------------------------------


def test_plain_ws(ws_server: Any) -> None:
    server = ws_server()
    up = upgrade(server.uri + "path?x=1", requests_kwargs={"params": {"y": "2"}})
    assert up.response.status_code == 101
    assert up.request.url == f"http://127.0.0.1:{server.port}/path?x=1&y=2"
    assert isinstance(up.raw_socket, socket.socket)
    assert up.raw_socket.getpeername()[1] == server.port
    assert up.leftover == b""
    sent = server.seen[-1]
    assert sent["Upgrade"] == "websocket" and sent["Sec-WebSocket-Version"] == "13"
    assert sent["Host"] == f"127.0.0.1:{server.port}"
    echo(up)


def test_wss_with_ca_path_ssl_context_and_server_hostname(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    echo(upgrade(server.uri, requests_kwargs={"verify": tls.ca_path}))
    up = upgrade(server.uri, ssl=tls.client_context)
    assert isinstance(up.sock, ssl.SSLSocket)
    assert server.seen[-1]["Host"] == f"localhost:{server.port}"
    echo(up)
    with pytest.raises(requests.exceptions.SSLError):
        upgrade(server.uri)  # the default CA bundle does not know trustme's CA

    # A certificate for another name: server_hostname sets SNI and the check.
    other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.ca.issue_cert("ws.example").configure_cert(other)
    named = ws_server(ssl_context=other)
    uri = f"wss://127.0.0.1:{named.port}/"
    with pytest.raises(requests.exceptions.SSLError, match=r"127\.0\.0\.1"):
        upgrade(uri, requests_kwargs={"verify": tls.ca_path})
    echo(upgrade(uri, ssl=tls.client_context, server_hostname="ws.example"))
    echo(upgrade(uri, server_hostname="ws.example", requests_kwargs={"verify": tls.ca_path}))
    # ssl= wins over verify=.
    echo(
        upgrade(
            uri,
            ssl=tls.client_context,
            server_hostname="ws.example",
            requests_kwargs={"verify": "/nonexistent/ca.pem"},
        )
    )


def test_session_verify_and_ca_bundle_environment(
    ws_server: Any, tls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ws_server(ssl_context=tls.server_context)
    session = requests.Session()
    session.verify = tls.ca_path
    echo(upgrade(server.uri, session))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path)
    echo(upgrade(server.uri))
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        upgrade(server.uri, session)


@pytest.mark.parametrize("secure", [False, True])
def test_leftover_bytes_sent_with_the_101(scripted: Any, tls: Any, secure: bool) -> None:
    first = server_frame(b"first") + server_frame(b"second")

    def script(sock: socket.socket, head: bytes) -> None:
        sock.sendall(switching(head) + first)
        sock.recv(1)  # until the client closes

    server = scripted(script, ssl_context=tls.server_context if secure else None)
    uri = f"{'wss' if secure else 'ws'}://localhost:{server.port}/"
    up = upgrade(uri, ssl=tls.client_context if secure else None)
    # Both frames were in the same segment as the 101: http.client buffered them.
    buffer = bytearray(up.leftover)
    assert bytes(buffer) == first
    assert read_frame(up, buffer) == b"first"
    assert read_frame(up, buffer) == b"second"
    up.sock.close()


# -- the session after the upgrade, descriptors, threads ---------------------------


@pytest.mark.parametrize("mounted", [False, True])
def test_session_keeps_working_without_pool_warnings(ws_server: Any, mounted: bool) -> None:
    server = ws_server(process_request=http_ok)
    session = requests.Session()
    if mounted:
        # The upgrade goes through the session's own pool: it must be detached.
        session.mount(
            "http://",
            type("Custom", (requests.adapters.HTTPAdapter,), {})(pool_maxsize=1, pool_block=False),
        )
    plain_url = server.uri.replace("ws://", "http://")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            up = upgrade(server.uri, session)
            response = session.get(plain_url)
            assert response.status_code == 200 and response.text == "plain http\n"
            echo(up)
    session.close()


def test_no_descriptor_leaks_on_success_and_errors(ws_server: Any, scripted: Any) -> None:
    server = ws_server()

    def forbid(connection: ServerConnection, request: Request) -> Response | None:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")

    forbidden = ws_server(process_request=forbid)
    silent = scripted(drain, read_request=False)
    refused = f"ws://127.0.0.1:{free_port()}/"
    session = requests.Session()
    echo(upgrade(server.uri, session))  # warm up imports and lazily opened files
    before = fd_count()
    for _ in range(5):
        up = upgrade(server.uri, session)
        echo(up)
        with pytest.raises(InvalidStatus):
            upgrade(forbidden.uri, session)
        with pytest.raises(requests.exceptions.ConnectionError):
            upgrade(refused, session)
    with pytest.raises(OpenTimeout):
        upgrade(f"ws://127.0.0.1:{silent.port}/", session, open_timeout=0.2)
    session.close()
    assert wait_fds(before) <= before


def test_upgrades_from_many_threads(ws_server: Any) -> None:
    server = ws_server()
    session = requests.Session()
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for _ in range(3):
                echo(upgrade(server.uri, session), f"thread {index}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors


# -- sock= and unix_path -----------------------------------------------------------


def test_given_socket(ws_server: Any, tls: Any) -> None:
    server = ws_server()
    sock = socket.create_connection(("127.0.0.1", server.port))
    up = upgrade("ws://example.invalid/chat", sock=sock, proxy="http://127.0.0.1:9")
    assert up.raw_socket is sock  # no DNS for example.invalid, no proxy
    assert server.seen[-1]["Host"] == "example.invalid"
    echo(up)

    secure = ws_server(ssl_context=tls.server_context)
    sock = socket.create_connection(("127.0.0.1", secure.port))
    up = upgrade("wss://localhost/", sock=sock, ssl=tls.client_context)
    assert isinstance(up.sock, ssl.SSLSocket)
    echo(up)


def test_unix_socket(ws_server: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "ws.sock")
    ws_server(unix_path=path)
    up = upgrade("ws://localhost/", unix_path=path)
    assert up.raw_socket.family == socket.AF_UNIX
    echo(up)
    with pytest.raises(OSError):
        upgrade("ws://localhost/", unix_path=str(tmp_path / "missing.sock"))


# -- non-101 answers, redirects ----------------------------------------------------


def test_invalid_status_with_readable_body(ws_server: Any, scripted: Any) -> None:
    def deny(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/secret":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "not for you\n")
        return connection.respond(http.HTTPStatus.NOT_FOUND, "no such endpoint\n")

    server = ws_server(process_request=deny)
    for path, status, body in [
        ("secret", 403, "not for you\n"),
        ("nope", 404, "no such endpoint\n"),
    ]:
        with pytest.raises(InvalidStatus) as info:
            upgrade(server.uri + path)
        assert info.value.response.status_code == status
        assert info.value.response.text == body
        assert isinstance(info.value, requests.exceptions.HTTPError)
        assert str(status) in str(info.value)

    def huge(sock: socket.socket, head: bytes) -> None:
        body = b"x" * 10_000_000
        sock.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(body))
        try:
            sock.sendall(body)
        except OSError:
            pass

    big = scripted(huge)
    with pytest.raises(InvalidStatus) as info:
        upgrade(f"ws://127.0.0.1:{big.port}/")
    assert info.value.response.status_code == 500
    assert 0 < len(info.value.response.content) <= 1 << 20  # bounded


def redirecting(routes: dict[str, tuple[int, str]]) -> Any:
    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.path in routes:
            status, location = routes[request.path]
            response = connection.respond(http.HTTPStatus(status), "moved\n")
            response.headers["Location"] = location
            response.headers["Set-Cookie"] = f"hop{status}=1; Path=/"
            return response
        return None

    return process_request


def test_redirects(ws_server: Any, tls: Any) -> None:
    target = ws_server()
    secure = ws_server(ssl_context=tls.server_context)
    routes = {
        "/ws": (301, target.uri),
        "/http": (302, target.uri.replace("ws://", "http://")),
        "/relative": (307, "/ws"),
        "/other": (303, f"//localhost:{target.port}/"),
        "/wss": (308, secure.uri),
        "/loop": (302, "/loop"),
    }
    server = ws_server(process_request=redirecting(routes))
    session = requests.Session()
    session.verify = tls.ca_path
    up = upgrade(server.uri + "ws", session, requests_kwargs={"cookies": {"mine": "1"}})
    assert [r.status_code for r in up.response.history] == [301]
    assert up.request.url == target.uri.replace("ws://", "http://")
    cookie = target.seen[-1]["Cookie"]
    assert "hop301=1" in cookie and "mine=1" in cookie
    assert session.cookies.get("hop301") == "1"
    echo(up)
    echo(upgrade(server.uri + "http", session))
    up = upgrade(server.uri + "relative", session)
    assert [r.status_code for r in up.response.history] == [307, 301]
    echo(up)
    echo(upgrade(server.uri + "other", session))
    up = upgrade(server.uri + "wss", session)  # ws -> wss is an upgrade: fine
    assert isinstance(up.sock, ssl.SSLSocket)
    echo(up)

    session.max_redirects = 3
    with pytest.raises(requests.exceptions.TooManyRedirects) as too_many:
        upgrade(server.uri + "loop", session)
    assert "3 redirects" in str(too_many.value)
    with pytest.raises(InvalidStatus) as info:
        upgrade(server.uri + "ws", requests_kwargs={"allow_redirects": False})
    assert info.value.response.status_code == 301
    assert info.value.response.headers["Location"] == target.uri


def test_redirect_from_wss_to_ws_is_refused(ws_server: Any, tls: Any) -> None:
    plain = ws_server()
    routes = {
        "/ws": (302, plain.uri),
        "/http": (301, plain.uri.replace("ws://", "http://")),
    }
    server = ws_server(ssl_context=tls.server_context, process_request=redirecting(routes))
    for path in ("ws", "http"):
        with pytest.raises(InvalidHandshake, match="wss:// to ws://") as info:
            upgrade(server.uri + path, ssl=tls.client_context)
        assert not isinstance(info.value, InvalidStatus)
    assert plain.seen == []


def test_redirect_not_followed_on_a_given_socket(ws_server: Any) -> None:
    server = ws_server(process_request=redirecting({"/": (302, "/elsewhere")}))
    sock = socket.create_connection(("127.0.0.1", server.port))
    with pytest.raises(InvalidHandshake, match="given socket"):
        upgrade(f"ws://127.0.0.1:{server.port}/", sock=sock)


# -- auth and cookies --------------------------------------------------------------


def basic_required(user: str, password: str) -> Any:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != expected:
            response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "who?\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="t"'
            return response
        return None

    return process_request


def test_basic_auth_url_userinfo_session_and_argument(ws_server: Any) -> None:
    server = ws_server(process_request=basic_required("al ice", "p@ss"))
    echo(upgrade(server.uri.replace("ws://", "ws://al%20ice:p%40ss@")))
    session = requests.Session()
    session.auth = ("al ice", "p@ss")
    echo(upgrade(server.uri, session))
    echo(upgrade(server.uri, requests_kwargs={"auth": ("al ice", "p@ss")}))
    with pytest.raises(InvalidStatus) as info:
        upgrade(server.uri, requests_kwargs={"auth": ("al ice", "wrong")})
    assert info.value.response.status_code == 401


def test_credentials_dropped_across_hosts(ws_server: Any) -> None:
    target = ws_server()
    server = ws_server(
        process_request=redirecting({"/": (302, target.uri.replace("127.0.0.1", "localhost"))})
    )
    echo(upgrade(server.uri, requests_kwargs={"auth": ("dave", "pw")}))
    assert "Authorization" in server.seen[-1]
    assert "Authorization" not in target.seen[-1]


class Digest:
    """A minimal RFC 7616 (MD5, qop=auth) check for process_request."""

    def __init__(self, user: str, password: str, hang_after_challenge: bool = False) -> None:
        self.user, self.password = user, password
        self.realm, self.nonce = "test-realm", os.urandom(8).hex()
        self.challenges = 0

    @staticmethod
    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Digest "):
            fields = requests.utils.parse_dict_header(header[7:])  # type: ignore[no-untyped-call]
            ha1 = self.h(f"{self.user}:{self.realm}:{self.password}")
            ha2 = self.h(f"GET:{fields.get('uri')}")
            expected = self.h(
                f"{ha1}:{self.nonce}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}"
            )
            if fields.get("username") == self.user and fields.get("response") == expected:
                return None
        self.challenges += 1
        response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "digest required\n")
        response.headers["WWW-Authenticate"] = (
            f'Digest realm="{self.realm}", nonce="{self.nonce}", qop="auth", algorithm=MD5'
        )
        return response


@pytest.mark.parametrize("mounted", [False, True])
def test_digest_auth_retry(ws_server: Any, mounted: bool) -> None:
    digest = Digest("bob", "pa55")
    server = ws_server(process_request=digest)
    session = requests.Session()
    if mounted:
        session.mount("http://", type("Custom", (requests.adapters.HTTPAdapter,), {})())
    auth = requests.auth.HTTPDigestAuth("bob", "pa55")
    up = upgrade(server.uri, session, requests_kwargs={"auth": auth})
    assert up.request.headers["Authorization"].startswith("Digest ")
    assert [r.status_code for r in up.response.history] == [401]
    assert digest.challenges == 1
    echo(up)
    with pytest.raises(InvalidStatus) as info:
        upgrade(
            server.uri, session, requests_kwargs={"auth": requests.auth.HTTPDigestAuth("bob", "x")}
        )
    assert info.value.response.status_code == 401


@pytest.mark.parametrize("mounted", [False, True])
def test_digest_retry_counts_against_open_timeout(scripted: Any, mounted: bool) -> None:
    """The retry gets the time left, not a fresh open_timeout."""

    heads: list[bytes] = []

    def script(sock: socket.socket, head: bytes) -> None:
        heads.append(head)
        while b"Authorization: Digest" not in head:
            time.sleep(0.6)
            sock.sendall(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
                b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\n\r\n'
            )
            head = sock.recv(4096)  # the retry, on this connection (keep-alive) ...
            heads.append(head)
            if not head:
                return  # ... or on a new one
        drain(sock)  # never answers the retry

    server = scripted(script)
    session = requests.Session()
    if mounted:
        session.mount("http://", type("Custom", (requests.adapters.HTTPAdapter,), {})())
    started = time.monotonic()
    with pytest.raises(OpenTimeout):
        upgrade(
            f"ws://127.0.0.1:{server.port}/",
            session,
            open_timeout=1,
            requests_kwargs={"auth": requests.auth.HTTPDigestAuth("u", "p")},
        )
    assert time.monotonic() - started < 1.5
    retries = [head for head in heads if b"Authorization: Digest" in head]
    assert len(retries) == 1, "the retry was sent, then timed out within open_timeout"


def test_netrc(ws_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\nlogin carol\npassword from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server = ws_server(process_request=basic_required("carol", "from-netrc"))
    echo(upgrade(server.uri))
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(InvalidStatus):
        upgrade(server.uri, session)


def test_cookies_both_ways(ws_server: Any, tls: Any) -> None:
    def process_response(
        connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        response.headers["Set-Cookie"] = "from101=yes; Path=/"
        return response

    server = ws_server(process_response=process_response)
    session = requests.Session()
    session.cookies.set("theme", "dark", domain="127.0.0.1", path="/")
    session.cookies.set("secret", "tls-only", domain="127.0.0.1", path="/", secure=True)
    echo(upgrade(server.uri, session, requests_kwargs={"cookies": {"extra": "1"}}))
    sent = server.seen[-1]["Cookie"]
    assert "theme=dark" in sent and "extra=1" in sent and "secret" not in sent
    assert session.cookies.get("from101") == "yes"
    assert "extra" not in session.cookies  # per-request cookies stay per request

    secure = ws_server(ssl_context=tls.server_context)
    uri = secure.uri.replace("localhost", "127.0.0.1")
    echo(upgrade(uri, session, ssl=tls.client_context, server_hostname="localhost"))
    assert "secret=tls-only" in secure.seen[-1]["Cookie"]


# -- headers -----------------------------------------------------------------------


def test_header_merge_and_user_agent(ws_server: Any) -> None:
    server = ws_server()
    session = requests.Session()
    session.headers["X-Session"] = "s"
    session.headers["Upgrade"] = "h2c"  # the WebSocket headers win
    session.headers["User-Agent"] = "session-agent"
    echo(upgrade(server.uri, session, requests_kwargs={"headers": {"X-Call": "c"}}))
    sent = server.seen[-1]
    assert sent["X-Session"] == "s" and sent["X-Call"] == "c"
    assert sent["Upgrade"] == "websocket"
    assert sent["User-Agent"] == "session-agent"  # no User-Agent from the caller

    headers = upgrade_headers(**{"User-Agent": "caller-agent"})
    echo(
        upgrade(
            server.uri,
            session,
            headers=headers,
            requests_kwargs={"headers": {"user-agent": "kwargs-agent"}},
        )
    )
    assert server.seen[-1].get_all("User-Agent") == ["caller-agent"]

    echo(upgrade(server.uri, session, headers=upgrade_headers(**{"User-Agent": None})))
    assert "User-Agent" not in server.seen[-1]  # none at all, not urllib3's

    echo(upgrade(server.uri, session, requests_kwargs={"headers": {"X-Session": None}}))
    assert "X-Session" not in server.seen[-1]


def test_unknown_requests_kwargs_are_a_type_error(ws_server: Any) -> None:
    # Keyword checks live at the doors (requests_ws.arguments), before any I/O.
    with pytest.raises(TypeError, match="stream"):
        requests_ws.connect("ws://127.0.0.1:9/", stream=True)  # type: ignore[call-arg]


# -- errors and open_timeout -------------------------------------------------------


def test_connection_errors(tls: Any, ws_server: Any) -> None:
    with pytest.raises(requests.exceptions.ConnectionError, match=r"127\.0\.0\.1"):
        upgrade(f"ws://127.0.0.1:{free_port()}/")
    with pytest.raises(requests.exceptions.ConnectionError):
        upgrade("ws://does-not-exist.invalid/")
    server = ws_server(ssl_context=tls.server_context)
    with pytest.raises(requests.exceptions.SSLError, match="verif"):
        upgrade(server.uri)


@pytest.mark.parametrize("where", ["handshake", "tls", "mounted", "proxy"])
def test_open_timeout_against_a_silent_peer(scripted: Any, connect_proxy: Any, where: str) -> None:
    silent = scripted(drain, read_request=False)
    session = requests.Session()
    kwargs: dict[str, Any] = {}
    scheme = "ws"
    if where == "tls":
        scheme = "wss"  # the TLS handshake never completes
    elif where == "mounted":
        session.mount("http://", type("Custom", (requests.adapters.HTTPAdapter,), {})())
    elif where == "proxy":
        kwargs["proxy"] = connect_proxy(silent=True).url
    started = time.monotonic()
    with pytest.raises(OpenTimeout) as info:
        upgrade(f"{scheme}://127.0.0.1:{silent.port}/", session, open_timeout=0.5, **kwargs)
    elapsed = time.monotonic() - started
    assert 0.45 < elapsed < 1.0
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, requests.exceptions.Timeout)
    assert "open_timeout" in str(info.value)


def test_open_timeout_spans_redirects(ws_server: Any, scripted: Any) -> None:
    def slow_redirect(sock: socket.socket, head: bytes) -> None:
        time.sleep(0.3)
        sock.sendall(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")

    server = scripted(slow_redirect)
    started = time.monotonic()
    with pytest.raises(OpenTimeout):
        upgrade(f"ws://127.0.0.1:{server.port}/", open_timeout=1)
    assert time.monotonic() - started < 1.5


# -- mounted adapters --------------------------------------------------------------


def test_mounted_adapter_serves_wss(ws_server: Any, tls: Any, monkeypatch: Any) -> None:
    used: list[str] = []

    class CorporateAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = tls.client_context
            super().init_poolmanager(*args, **kwargs)

        def send(  # type: ignore[override]
            self, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            used.append(str(request.url))
            return super().send(request, **kwargs)

    server = ws_server(ssl_context=tls.server_context, process_request=http_ok)
    session = requests.Session()
    session.mount("https://", CorporateAdapter())
    up = upgrade(server.uri, session)
    assert used == [server.uri.replace("wss://", "https://")]
    assert session.get(server.uri.replace("wss://", "https://")).text == "plain http\n"
    echo(up)
    # proxy=None means "no proxy", not "not your adapter".
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    echo(upgrade(server.uri, session, proxy=None))
    assert len(used) == 3


# -- proxies (a tiny CONNECT proxy; real proxies are in test_proxies.py) -----------


def test_ws_and_wss_tunnel_through_an_http_proxy(
    ws_server: Any, tls: Any, connect_proxy: Any
) -> None:
    proxy = connect_proxy()
    plain = ws_server()
    secure = ws_server(ssl_context=tls.server_context)
    up = upgrade(plain.uri, proxy=proxy.url)
    assert proxy.heads[-1].startswith(f"CONNECT 127.0.0.1:{plain.port} HTTP/1.1\r\n")
    assert up.request.url == plain.uri.replace("ws://", "http://")
    echo(up)
    echo(upgrade(secure.uri, proxy=proxy.url, ssl=tls.client_context))
    assert proxy.heads[-1].startswith(f"CONNECT localhost:{secure.port} ")


def test_wss_through_an_https_proxy_is_tls_in_tls(
    ws_server: Any, tls: Any, connect_proxy: Any
) -> None:
    proxy = connect_proxy(ssl_context=tls.server_context)
    secure = ws_server(ssl_context=tls.server_context)
    plain = ws_server()
    up = upgrade(secure.uri, proxy=proxy.url, ssl=tls.client_context, proxy_ssl=tls.client_context)
    assert not isinstance(up.sock, ssl.SSLSocket)  # urllib3's SSLTransport
    assert up.raw_socket.fileno() == up.sock.fileno()
    echo(up)
    # The proxy is verified with the session's verify when proxy_ssl is absent ...
    echo(upgrade(plain.uri, proxy=proxy.url, requests_kwargs={"verify": tls.ca_path}))
    # ... never skipped, for ws:// too.
    with pytest.raises(ProxyError, match="verification"):
        upgrade(plain.uri, proxy=proxy.url)
    # proxy_server_hostname: SNI and the check for the proxy's certificate.
    other = connect_proxy(ssl_context=tls.server_context)
    with pytest.raises(ProxyError):
        upgrade(
            plain.uri,
            proxy=other.url,
            proxy_ssl=tls.client_context,
            proxy_server_hostname="wrong.example",
        )
    echo(
        upgrade(
            plain.uri,
            proxy=f"https://127.0.0.1:{other.port}",
            proxy_ssl=tls.client_context,
            proxy_server_hostname="localhost",
        )
    )


def test_proxy_credentials_and_refusals(ws_server: Any, connect_proxy: Any) -> None:
    server = ws_server()
    proxy = connect_proxy(credentials=("pu", "p:w"))
    authed = proxy.url.replace("http://", "http://pu:p%3Aw@")
    echo(upgrade(server.uri, proxy=authed))
    assert "Proxy-Authorization: Basic " in proxy.heads[-1]

    with pytest.raises(ProxyError) as info:
        upgrade(server.uri, proxy=proxy.url)
    error = info.value
    assert isinstance(error, InvalidHandshake)
    assert isinstance(error, requests.exceptions.ProxyError)
    assert error.status == 407 and error.reason == "Proxy Authentication Required"
    assert proxy.url in str(error) and "407" in str(error) and "authentication" in str(error)

    with pytest.raises(ProxyError) as info:
        upgrade(server.uri, proxy=proxy.url.replace("http://", "http://pu:bad@"))
    assert info.value.status == 407
    assert "bad" not in str(info.value) and info.value.proxy == proxy.url
    assert "credentials" in str(info.value)

    forbidding = connect_proxy(refuse="403 Forbidden")
    with pytest.raises(ProxyError, match="403 Forbidden") as info:
        upgrade(server.uri, proxy=forbidding.url)
    assert info.value.status == 403

    with pytest.raises(ProxyError, match=re.escape(f"127.0.0.1:{(port := free_port())}")):
        upgrade(server.uri, proxy=f"http://127.0.0.1:{port}")


def test_proxy_selection(
    ws_server: Any, tls: Any, connect_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = connect_proxy()
    plain = ws_server()
    secure = ws_server(ssl_context=tls.server_context)
    refusing = "http://127.0.0.1:9"

    def tunnels() -> int:
        return len(proxy.heads)

    # session.proxies, requests_kwargs["proxies"], proxy=None.
    session = requests.Session()
    session.proxies = {"http": proxy.url}
    echo(upgrade(plain.uri, session))
    assert tunnels() == 1
    echo(upgrade(plain.uri, requests_kwargs={"proxies": {"http": proxy.url}}))
    assert tunnels() == 2
    echo(upgrade(plain.uri, session, proxy=None))
    assert tunnels() == 2

    # The environment: HTTP_PROXY for ws, HTTPS_PROXY for wss, ALL_PROXY.
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", refusing)
    echo(upgrade(plain.uri))
    assert tunnels() == 3
    with pytest.raises(ProxyError):
        upgrade(secure.uri, ssl=tls.client_context)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    echo(upgrade(secure.uri, ssl=tls.client_context))
    assert tunnels() == 4
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    echo(upgrade(plain.uri))
    assert tunnels() == 5

    # NO_PROXY: host, domain suffix, *, CIDR; trust_env=False ignores it all.
    monkeypatch.setenv("ALL_PROXY", refusing)
    for no_proxy in ("127.0.0.1", "127.0.0.0/8", "*", "example.org, 127.0.0.1"):
        monkeypatch.setenv("NO_PROXY", no_proxy)
        echo(upgrade(plain.uri))
    # Host names: exact, with the port, as a domain (requests' rules).
    for no_proxy in ("localhost", f"localhost:{secure.port}", "example.org,.localhost"):
        monkeypatch.setenv("NO_PROXY", no_proxy)
        echo(upgrade(secure.uri, ssl=tls.client_context))
    monkeypatch.setenv("NO_PROXY", "other.example")
    with pytest.raises(ProxyError):
        upgrade(plain.uri)
    quiet = requests.Session()
    quiet.trust_env = False
    echo(upgrade(plain.uri, quiet))
    # An explicit proxy string wins over the environment.
    echo(upgrade(plain.uri, proxy=proxy.url))
    assert tunnels() == 6


def test_proxy_errors_from_a_mounted_adapter(ws_server: Any, tls: Any, connect_proxy: Any) -> None:
    """wss:// through a mounted adapter goes through urllib3's tunnel: its
    errors still come out as ProxyError with status and reason."""
    secure = ws_server(ssl_context=tls.server_context)

    class Custom(requests.adapters.HTTPAdapter):
        pass

    session = requests.Session()
    session.verify = tls.ca_path
    session.mount("https://", Custom())
    good = connect_proxy()
    echo(upgrade(secure.uri, session, proxy=good.url))
    assert good.heads[-1].startswith(f"CONNECT localhost:{secure.port} ")

    refusing = connect_proxy(refuse="407 Proxy Authentication Required")
    with pytest.raises(ProxyError) as info:
        upgrade(secure.uri, session, proxy=refusing.url.replace("http://", "http://u:pw@"))
    assert info.value.status == 407
    assert info.value.proxy == refusing.url and "pw" not in str(info.value)
    # ws:// behind an HTTP proxy always tunnels, even with a mounted adapter.
    plain = ws_server()
    session.mount("http://", Custom())
    echo(upgrade(plain.uri, session, proxy=good.url))
    assert good.heads[-1].startswith(f"CONNECT 127.0.0.1:{plain.port} ")


def test_socks_without_a_server_is_a_proxy_error(ws_server: Any) -> None:
    server = ws_server()
    port = free_port()
    with pytest.raises(ProxyError, match=re.escape(f"socks5h://127.0.0.1:{port}")):
        upgrade(server.uri, proxy=f"socks5h://user:pw@127.0.0.1:{port}")
    with pytest.raises(InvalidProxy, match="unsupported scheme"):
        upgrade(server.uri, proxy="ftp://127.0.0.1:21")


def test_no_descriptor_leaks_without_the_garbage_collector(
    ws_server: Any, tls: Any, scripted: Any
) -> None:
    """Error paths close their sockets at once, not when a response is collected
    (http.client's reader keeps a socket's descriptor open until it is closed)."""
    plain = ws_server()
    secure = ws_server(
        ssl_context=tls.server_context, process_request=redirecting({"/": (302, plain.uri)})
    )

    def challenge_then_hang(sock: socket.socket, head: bytes) -> None:
        if b"Authorization" not in head:
            sock.sendall(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n"
                b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\n\r\n'
            )
            return
        drain(sock)

    digest = scripted(challenge_then_hang)
    auth = {"auth": requests.auth.HTTPDigestAuth("u", "p")}
    with pytest.raises(InvalidHandshake):
        upgrade(secure.uri, ssl=tls.client_context)  # warm up
    gc.collect()
    gc.disable()
    try:
        before = fd_count()
        for _ in range(3):
            with pytest.raises(InvalidHandshake, match="wss:// to ws://"):
                upgrade(secure.uri, ssl=tls.client_context)
            with pytest.raises(OpenTimeout):
                upgrade(f"ws://127.0.0.1:{digest.port}/", open_timeout=0.3, requests_kwargs=auth)
        assert wait_fds(before) <= before
    finally:
        gc.enable()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_with_credentials(
    microsocks: Any, ws_server: Any, tls: Any, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = ws_server()
    secure = ws_server(ssl_context=tls.server_context)
    host = f"127.0.0.1:{microsocks.port}"
    good = f"{scheme}://{microsocks.user}:{microsocks.password}@{host}"
    echo(upgrade(plain.uri, proxy=good))
    echo(upgrade(secure.uri, proxy=good, ssl=tls.client_context))
    session = requests.Session()
    session.proxies = {"https": good}
    echo(upgrade(secure.uri, session, ssl=tls.client_context))
    with pytest.raises(ProxyError) as info:
        upgrade(plain.uri, proxy=f"{scheme}://{microsocks.user}:wrong@{host}")
    assert info.value.proxy == f"{scheme}://{host}" and "wrong" not in str(info.value)

    monkeypatch.setitem(sys.modules, "socks", None)  # PySocks not installed
    with pytest.raises(ProxyError, match=re.escape("pip install 'requests-ws[socks]'")):
        upgrade(plain.uri, proxy=good)
