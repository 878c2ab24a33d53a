"""Errors: websockets 17's names and hierarchy, each also the requests
exception of the contract; network errors that are also the built-in ones;
malformed answers from servers and proxies; the sans-I/O core's layering."""

from __future__ import annotations

import builtins
import socket
import ssl
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import requests
import requests.adapters
import websockets.exceptions

import requests_ws
import requests_ws.exceptions
from requests_ws import (
    InvalidHandshake,
    InvalidMessage,
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
    ProxyError,
)

from .peers.proxies import free_port
from .peers.scripted_http import ScriptedHTTPServer, switching_protocols

SURFACE = [
    "connect",
    "unix_connect",
    "ClientConnection",
    "Session",
    "ws_connect",
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidHeader",
    "InvalidUpgrade",
    "NegotiationError",
    "ProxyError",
    "ProtocolError",
    "PayloadTooBig",
    "ConcurrencyError",
    "InvalidMessage",
    "InvalidProxy",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "DuplicateParameter",
    "InvalidParameterName",
    "InvalidParameterValue",
    "InvalidState",
    "SecurityError",
    "reconnect",
    "unix_reconnect",
    "TimeoutError",
    "OpenTimeout",
    "USER_AGENT",
    "__version__",
]


def test_module_surface_imports_every_name() -> None:
    for name in SURFACE:
        assert getattr(requests_ws, name) is not None, name
        assert name in dir(requests_ws), name
        assert name in requests_ws.__all__, name
    assert requests_ws.TimeoutError is builtins.TimeoutError
    with pytest.raises(AttributeError):
        requests_ws.no_such_name  # noqa: B018


def test_hierarchy_is_websockets_17s() -> None:
    ours = {
        name: getattr(requests_ws.exceptions, name)
        for name in requests_ws.exceptions.__all__
        if isinstance(getattr(requests_ws.exceptions, name), type)
    }
    checked = 0
    for name, cls in ours.items():
        theirs = getattr(websockets.exceptions, name, None)
        if theirs is None or name == "TimeoutError":
            continue
        for base in theirs.__mro__:
            if base.__module__.startswith("websockets") and base.__name__ in ours:
                assert issubclass(cls, ours[base.__name__]), (name, base.__name__)
                checked += 1
            elif not base.__module__.startswith("websockets") and base is not object:
                assert issubclass(cls, base), (name, base)
    assert checked > 40


@pytest.mark.parametrize(
    ("name", "also"),
    [
        ("InvalidURI", ValueError),
        ("InvalidProxy", requests.exceptions.InvalidProxyURL),
        ("ProxyError", requests.exceptions.ProxyError),
        ("InvalidProxyMessage", requests.exceptions.ProxyError),
        ("InvalidProxyStatus", requests.exceptions.ProxyError),
        ("InvalidMessage", requests.exceptions.ConnectionError),
        ("InvalidStatus", requests.exceptions.HTTPError),
        ("OpenTimeout", requests.exceptions.Timeout),
        ("OpenTimeout", TimeoutError),
        ("InvalidState", AssertionError),
        ("ConcurrencyError", RuntimeError),
    ],
)
def test_each_is_also_the_requests_exception(name: str, also: type) -> None:
    assert issubclass(getattr(requests_ws, name), also)
    assert issubclass(getattr(requests_ws, name), requests_ws.WebSocketException)


def test_sans_io_core_imports_no_requests_urllib3_or_socket() -> None:
    code = textwrap.dedent(
        """
        import sys
        import requests_ws.protocol, requests_ws.handshake, requests_ws.frames
        import requests_ws.extensions, requests_ws.errors
        loaded = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("requests", "urllib3", "socket", "ssl", "http")
        )
        print(",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", result.stdout
    # and the public package still loads everything on demand
    code = "import requests_ws, sys; requests_ws.connect; print('requests' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "True"


# -- network errors are also the built-in ones -------------------------------------


def test_refused_is_also_connection_refused_error() -> None:
    with pytest.raises(ConnectionRefusedError) as info:
        requests_ws.connect(f"ws://127.0.0.1:{free_port()}/", proxy=None)
    assert isinstance(info.value, requests.exceptions.ConnectionError)
    assert info.value.errno is not None


def test_refused_through_a_mounted_adapter_too() -> None:
    class Mounted(requests.adapters.HTTPAdapter):
        pass

    session = requests.Session()
    session.mount("http://", Mounted())
    with pytest.raises(ConnectionRefusedError) as info:
        requests_ws.ws_connect(session, f"ws://127.0.0.1:{free_port()}/")
    assert isinstance(info.value, requests.exceptions.ConnectionError)


@pytest.mark.parametrize("scheme", ["http", "https", "socks5h"])
def test_refusing_proxy_port_is_a_proxy_error_and_connection_refused_error(scheme: str) -> None:
    with pytest.raises(ProxyError) as info:
        requests_ws.connect("ws://backend.example/", proxy=f"{scheme}://127.0.0.1:{free_port()}")
    assert isinstance(info.value, ConnectionRefusedError)
    assert isinstance(info.value, requests.exceptions.ProxyError)
    assert info.value.proxy == f"{scheme}://127.0.0.1:{info.value.proxy.rpartition(':')[2]}"


def test_name_resolution_is_also_gaierror() -> None:
    with pytest.raises(socket.gaierror) as info:
        requests_ws.connect("ws://does-not-exist.invalid/", proxy=None, open_timeout=5)
    assert isinstance(info.value, requests.exceptions.ConnectionError)


def test_certificate_failure_is_also_ssl_cert_verification_error(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        requests_ws.connect(server.uri, proxy=None)
    error = info.value
    assert isinstance(error, requests.exceptions.SSLError)
    assert "verify=" in str(error)  # the hint
    assert error.verify_code is not None


# -- malformed answers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"SSH-2.0-OpenSSH_9.0\r\n\r\n", "not valid HTTP"),
        (b"HTTP/1.1 10", "not valid HTTP"),
        (b"", "closed the connection"),
    ],
)
def test_junk_or_truncated_handshake_answer_is_invalid_message(
    scripted_http: Any, answer: bytes, words: str
) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        sock.sendall(answer)

    server: ScriptedHTTPServer = scripted_http(handler)
    with pytest.raises(InvalidMessage) as info:
        requests_ws.connect(server.uri())
    assert isinstance(info.value, InvalidHandshake)
    assert isinstance(info.value, requests.exceptions.ConnectionError)
    assert words in str(info.value)
    assert server.uri() in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        "HTTP/1.1 ²²² OK\r\n\r\n",
        "garbage\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200",  # then the proxy closes
    ],
)
def test_malformed_proxy_answer_is_invalid_proxy_message(scripted_http: Any, answer: str) -> None:
    proxy: ScriptedHTTPServer = scripted_http(
        lambda sock, head: sock.sendall(answer.encode("utf-8"))
    )
    with pytest.raises(InvalidProxyMessage) as info:
        requests_ws.connect("ws://backend.example/", proxy=f"http://127.0.0.1:{proxy.port}")
    assert isinstance(info.value, ProxyError)
    assert isinstance(info.value, requests.exceptions.ProxyError)


@pytest.mark.parametrize(
    ("proxy", "words"),
    [
        ("http://127.0.0.1:99999", "port"),
        ("ftp://127.0.0.1:21", "scheme"),
        ("http://:3128", "host"),
    ],
)
def test_bad_proxy_url_is_invalid_proxy_before_any_io(proxy: str, words: str) -> None:
    with pytest.raises(InvalidProxy) as info:
        requests_ws.connect("ws://backend.example/", proxy=proxy)
    assert words in str(info.value)
    assert isinstance(info.value, requests.exceptions.InvalidURL)


def test_bad_proxy_url_from_the_session_is_invalid_proxy() -> None:
    session = requests.Session()
    session.proxies = {"http": "http://user:pw-in-proxy@127.0.0.1:99999"}
    with pytest.raises(InvalidProxy) as info:
        requests_ws.ws_connect(session, "ws://backend.example/")
    assert "pw-in-proxy" not in str(info.value)


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:99999", "gopher://127.0.0.1:70"])
def test_bad_proxy_url_with_a_mounted_adapter_is_invalid_proxy(proxy: str) -> None:
    class Mounted(requests.adapters.HTTPAdapter):
        pass

    session = requests.Session()
    session.mount("https://", Mounted())
    session.proxies = {"https": proxy}
    with pytest.raises(InvalidProxy):
        requests_ws.ws_connect(session, "wss://backend.example/")


def test_refusing_proxy_is_invalid_proxy_status_with_response(scripted_http: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        sock.sendall(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b'Proxy-Authenticate: Negotiate\r\nProxy-Authenticate: Basic realm="corp"\r\n'
            b"Content-Length: 0\r\n\r\n"
        )

    proxy: ScriptedHTTPServer = scripted_http(handler)
    with pytest.raises(InvalidProxyStatus) as info:
        requests_ws.connect("ws://backend.example/", proxy=f"http://127.0.0.1:{proxy.port}")
    error = info.value
    assert isinstance(error.response, requests.Response)
    assert error.response.status_code == 407 == error.status
    assert "Negotiate" in error.response.headers["Proxy-Authenticate"]
    assert "Negotiate" in str(error) and "Basic" in str(error)
    assert isinstance(error, requests.exceptions.ProxyError)


# -- InvalidStatus says what the server said ------------------------------------------


def test_invalid_status_names_uri_status_schemes_and_body(scripted_http: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        body = b"please log in first" + b"." * 500
        sock.sendall(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=x, nonce=y\r\n"
            b'WWW-Authenticate: Bearer realm="api"\r\n'
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    server: ScriptedHTTPServer = scripted_http(handler)
    uri = server.uri("/feed?x=1")
    with pytest.raises(InvalidStatus) as info:
        requests_ws.connect(uri)
    text = str(info.value)
    assert uri in text and "http://" not in text
    assert "401" in text and "Digest" in text and "Bearer" in text
    assert "please log in first" in text
    assert len(text) < 400  # the first bytes, not the whole body
    assert info.value.response.text.startswith("please log in first")


def test_101_cut_in_its_headers_is_an_invalid_handshake(scripted_http: Any) -> None:
    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs")
    )
    with pytest.raises(InvalidHandshake):
        requests_ws.connect(server.uri())


def test_101_with_a_bad_accept_is_invalid_header_value(scripted_http: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        sock.sendall(switching_protocols(head).replace(b"Accept: ", b"Accept: x"))

    server: ScriptedHTTPServer = scripted_http(handler)
    with pytest.raises(requests_ws.InvalidHeaderValue):
        requests_ws.connect(server.uri())
