"""``requests_ws.http_exchange``: the upgrade exchanged without urllib3 when it
is plain, and handed to urllib3 unchanged when it is not.

Against real sockets: the request bytes are compared with the ones urllib3
itself writes for the same prepared request (over a socketpair), and odd but
valid answers (folded headers, bare LF line ends, ``100 Continue`` first,
repeated headers, a head in one-byte segments) come from the scripted HTTP peer,
followed at once by a frame that must reach ``recv()``, whichever side read
the head.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from typing import Any

import pytest
import requests
import urllib3
from urllib3.util import SKIP_HEADER

import requests_ws
from requests_ws import InvalidMessage, InvalidUpgrade
from requests_ws.http_exchange import encode_request, parse_switching

from .peers.scripted_http import GUID, ScriptedHTTPServer, header

FRAME = b"\x81\x05hello"  # an unmasked text frame from the server
CLOSE = b"\x88\x02\x03\xe8"


def _accept(head: bytes) -> str:
    key = header(head, "Sec-WebSocket-Key") or ""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def _answer_then_close(sock: socket.socket, answer: bytes, step: int = 0) -> None:
    """Send ``answer`` (whole, or ``step`` bytes at a time), then a frame;
    answer the client's close frame."""
    if step:
        for index in range(0, len(answer), step):
            sock.sendall(answer[index : index + step])
    else:
        sock.sendall(answer)
    sock.sendall(FRAME)
    if sock.recv(65536):  # the client's close frame
        sock.sendall(CLOSE)


def _serve(scripted_http: Any, head_for: Any, step: int = 0) -> ScriptedHTTPServer:
    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: _answer_then_close(sock, head_for(_accept(head)), step)
    )
    return server


def _prepared(session: requests.Session, url: str, **headers: Any) -> requests.PreparedRequest:
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", **headers}
    return session.prepare_request(requests.Request("GET", url, headers=upgrade))


def _urllib3_bytes(request: requests.PreparedRequest, host: str, port: int) -> bytes:
    """What urllib3's connection writes for ``request``, read off a socketpair."""
    ours, theirs = socket.socketpair()
    try:
        connection = urllib3.connection.HTTPConnection(host=host, port=port)
        if port == 443:
            connection.default_port = 443  # type: ignore[misc]  # as transport's pool sets it
        connection.sock = ours
        connection.request(
            "GET", request.path_url, body=None, headers=request.headers, chunked=False
        )
        theirs.settimeout(5)
        data = b""
        while not data.endswith(b"\r\n\r\n"):
            data += theirs.recv(65536)
        return data
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("http://127.0.0.1:8765/chat?room=1&user=a%20b", {}),
        ("http://example.com/", {}),
        ("https://example.com/", {"X-Trace": "abc", "User-Agent": SKIP_HEADER}),
        ("https://example.com:8443/p", {"Accept-Encoding": None, "Origin": "https://o.example"}),
        ("http://example.com:80/", {"Cookie": "a=1; b=2", "Accept": None}),
    ],
)
def test_request_bytes_are_urllib3s(url: str, extra: dict[str, Any]) -> None:
    session = requests.Session()
    request = _prepared(session, url, **extra)
    parts = urllib3.util.parse_url(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ours = encode_request(request, str(parts.host), port)
    assert ours is not None
    assert ours == _urllib3_bytes(request, str(parts.host), port)


def test_requests_that_are_not_plain_are_left_to_urllib3() -> None:
    session = requests.Session()
    assert (
        encode_request(_prepared(session, "http://example.com/", X=b"bytes"), "example.com", 80)
        is None
    )
    assert encode_request(_prepared(session, "http://[::1]:8/"), "::1", 8) is None
    assert encode_request(_prepared(session, "http://host.example./"), "host.example.", 80) is None
    with_body = session.prepare_request(requests.Request("POST", "http://example.com/", data="x"))
    assert encode_request(with_body, "example.com", 80) is None
    framed = _prepared(session, "http://example.com/", **{"Transfer-Encoding": "chunked"})
    assert encode_request(framed, "example.com", 80) is None


def test_only_a_plain_101_head_is_read_here() -> None:
    plain = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nX:  two  \r\n\r\n"
    assert parse_switching(plain) == (
        "Switching Protocols",
        [("Upgrade", "websocket"), ("X", "two  ")],
    )
    assert parse_switching(b"HTTP/1.1 101\r\n\r\n") == ("", [])
    for odd in (
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.0 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 101 OK\nUpgrade: websocket\n\n",
        b"HTTP/1.1 101 OK\r\nX: a\r\n  folded\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 101 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n",
    ):
        assert parse_switching(odd) is None, odd


def _switching(
    accept: str,
    line_end: str = "\r\n",
    extra: str = "",
    status: str = "HTTP/1.1 101 Switching Protocols",
) -> bytes:
    lines = [status, "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept}"]
    if extra:
        lines.append(extra)
    return (line_end.join(lines) + line_end + line_end).encode("latin-1")


@pytest.mark.parametrize(
    ("name", "head_for", "step", "expected"),
    [
        ("plain", lambda accept: _switching(accept, extra="X-Seen: yes "), 0, "yes "),
        ("one byte at a time", lambda accept: _switching(accept, extra="X-Seen: yes"), 1, "yes"),
        ("bare LF", lambda accept: _switching(accept, "\n", "X-Seen: yes"), 0, "yes"),
        ("folded", lambda accept: _switching(accept, extra="X-Seen: y\r\n es"), 0, "y es"),
        (
            "100 Continue first",
            lambda accept: (
                b"HTTP/1.1 100 Continue\r\n\r\n" + _switching(accept, extra="X-Seen: yes")
            ),
            0,
            "yes",
        ),
        ("repeated", lambda accept: _switching(accept, extra="X-Seen: a\r\nx-seen: b"), 0, "a, b"),
    ],
)
def test_answers_read_here_or_by_urllib3_open_the_same_connection(
    no_leaks: None, scripted_http: Any, name: str, head_for: Any, step: int, expected: str
) -> None:
    server = _serve(scripted_http, head_for, step)
    with requests_ws.connect(server.uri(), compression=None, open_timeout=5) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["X-Seen"] == expected
        raw = ws.response.raw
        assert isinstance(raw, urllib3.HTTPResponse) and raw.status == 101
        assert raw._original_response is not None
        assert raw._original_response.msg.get_all("Upgrade") == ["websocket"]
        assert ws.recv(timeout=5) == "hello"  # the frame sent right after the head


def test_set_cookie_on_a_plain_101(scripted_http: Any) -> None:
    server = _serve(
        scripted_http, lambda accept: _switching(accept, extra="Set-Cookie: flavour=oat; Path=/")
    )
    session = requests.Session()
    with requests_ws.ws_connect(session, server.uri(), compression=None) as ws:
        assert ws.response.cookies.get("flavour") == "oat"
        assert ws.recv(timeout=5) == "hello"
    assert session.cookies.get("flavour") == "oat"


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (b"", InvalidMessage, "closed the connection without answering"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", InvalidMessage, "not valid HTTP"),
        # http.client reads a head cut short as a complete one: the check finds it lacking.
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs", InvalidUpgrade, "Connection"),
    ],
)
def test_a_broken_answer_is_still_urllib3s_verdict(
    no_leaks: None, scripted_http: Any, answer: bytes, error: type[Exception], words: str
) -> None:
    server: ScriptedHTTPServer = scripted_http(lambda sock, head: sock.sendall(answer))
    with pytest.raises(error) as info:
        requests_ws.connect(server.uri(), compression=None, open_timeout=5)
    assert words in str(info.value)


def test_each_connect_gets_a_fresh_default_session(scripted_http: Any) -> None:
    # connect() makes its own session from a default one's state: a cookie
    # the first 101 sets must not go out with the second opening.
    server = _serve(scripted_http, lambda accept: _switching(accept, extra="Set-Cookie: seen=1"))
    for _ in range(2):
        with requests_ws.connect(server.uri(), compression=None) as ws:
            assert ws.response.cookies.get("seen") == "1"
            assert ws.recv(timeout=5) == "hello"
    first, second = server.heads
    assert header(first, "Cookie") is None and header(second, "Cookie") is None
    for head in (first, second):
        assert header(head, "Accept") == "*/*"  # requests' default headers
        assert header(head, "User-Agent") == requests_ws.USER_AGENT


def test_a_hook_failing_on_a_plain_101_closes_the_stream(
    no_leaks: None, scripted_http: Any
) -> None:
    server = _serve(scripted_http, _switching)

    def refuse(response: requests.Response, **kwargs: Any) -> None:
        raise RuntimeError(f"hook refused {response.status_code}")

    session = requests.Session()
    session.hooks["response"].append(refuse)
    with pytest.raises(RuntimeError, match="hook refused 101"):
        requests_ws.ws_connect(session, server.uri(), compression=None)
    session.close()
