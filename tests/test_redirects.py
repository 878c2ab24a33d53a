"""Redirects during the handshake follow requests' rules exactly: each rule
is checked side by side with plain requests against the same server."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests

import requests_ws

from .peers.scripted_http import ScriptedHTTPServer, header, request_target, switching_protocols

WATCHED = ("Authorization", "Proxy-Authorization", "Cookie")


class RedirectServer:
    """/start* redirects to the Location a test picks; /final answers 200 to
    plain HTTP and 101 to an upgrade; every request head is kept."""

    def __init__(self, scripted_http: Callable[..., ScriptedHTTPServer]) -> None:
        self.location = "/final"
        self.set_cookie: str | None = None
        self.server = scripted_http(self._handle)

    def _handle(self, sock: socket.socket, head: bytes) -> None:
        target = request_target(head)
        if target.startswith("/start"):
            extra = f"Set-Cookie: {self.set_cookie}\r\n" if self.set_cookie else ""
            location = self.location.replace("PORT", str(self.server.port))
            sock.sendall(
                f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n{extra}"
                "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
        elif header(head, "Upgrade"):
            sock.sendall(switching_protocols(head))
            sock.settimeout(5)
            sock.recv(65536)  # the client's close frame: hang up at once
        else:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def final_headers(self) -> dict[str, str | None]:
        head = self.server.heads[-1]
        assert request_target(head).startswith("/final"), head
        return {name: header(head, name) for name in WATCHED}

    def url(self, scheme: str, host: str = "127.0.0.1", path: str = "/start") -> str:
        return f"{scheme}://{host}:{self.server.port}{path}"


@pytest.fixture
def redirects(scripted_http: Any) -> RedirectServer:
    return RedirectServer(scripted_http)


def _both(
    redirects: RedirectServer, session_factory: Callable[[], requests.Session], **kwargs: Any
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The watched headers of the final request: plain requests, then ours."""
    with session_factory() as session:
        response = session.get(redirects.url("http"), **kwargs)
        assert response.status_code == 200
        assert len(response.history) == 1
    plain = redirects.final_headers()
    with (
        session_factory() as session,
        requests_ws.ws_connect(session, redirects.url("ws"), **kwargs) as ws,
    ):
        assert len(ws.response.history) == 1
    ours = redirects.final_headers()
    return plain, ours


LOCATIONS = {
    "same host, relative": "/final",
    "same host, absolute": "http://127.0.0.1:PORT/final",
    "other host": "http://localhost:PORT/final",
    "other host, scheme-relative": "//localhost:PORT/final",
}


@pytest.mark.parametrize("location", LOCATIONS.values(), ids=LOCATIONS.keys())
@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"Proxy-Authorization": "Basic cHJveHk6cHc="}},
        {"headers": {"Authorization": "Bearer tok"}},
        {"auth": ("user", "pw")},
        {"cookies": {"flavour": "oat"}},
        {"headers": {"Cookie": "raw=1"}},
    ],
    ids=["proxy-authorization", "authorization-header", "auth", "cookies", "cookie-header"],
)
def test_rule_matches_requests(
    redirects: RedirectServer, location: str, kwargs: dict[str, Any]
) -> None:
    redirects.location = location
    plain, ours = _both(redirects, requests.Session, **kwargs)
    assert ours == plain


@pytest.mark.parametrize("location", LOCATIONS.values(), ids=LOCATIONS.keys())
def test_cookie_set_by_the_redirect_matches_requests(
    redirects: RedirectServer, location: str
) -> None:
    redirects.location = location
    redirects.set_cookie = "hop=1; Path=/"
    plain, ours = _both(redirects, requests.Session)
    assert ours == plain
    same_host = location == "/final" or "127.0.0.1" in location
    assert ours["Cookie"] == ("hop=1" if same_host else None)


def test_session_cookies_and_auth_matches_requests(redirects: RedirectServer) -> None:
    def factory() -> requests.Session:
        session = requests.Session()
        session.auth = ("user", "pw")
        session.cookies.set("jar", "1", domain="127.0.0.1")
        return session

    for location in LOCATIONS.values():
        redirects.location = location
        plain, ours = _both(redirects, factory)
        assert ours == plain, location


def test_same_host_keeps_cookies_argument(redirects: RedirectServer) -> None:
    _, ours = _both(redirects, requests.Session, cookies={"flavour": "oat"})
    assert ours["Cookie"] == "flavour=oat"


def test_proxy_authorization_is_dropped_across_hosts(redirects: RedirectServer) -> None:
    redirects.location = "http://localhost:PORT/final"
    _, ours = _both(redirects, requests.Session, headers={"Proxy-Authorization": "Basic eA=="})
    assert ours["Proxy-Authorization"] is None


@pytest.mark.parametrize("scheme", ["WS", "Ws", "ws"])
def test_ws_location_in_any_case(redirects: RedirectServer, scheme: str) -> None:
    redirects.location = f"{scheme}://127.0.0.1:PORT/final"
    with requests_ws.connect(redirects.url("ws")) as ws:
        assert ws.response.history[0].status_code == 302
        assert str(ws.request.url).endswith("/final")


def test_uppercase_wss_location(scripted_http: Any, tls: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        if request_target(head) == "/start":
            sock.sendall(
                f"HTTP/1.1 301 Moved\r\nLocation: WSS://localhost:{server.port}/final\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
        else:
            sock.sendall(switching_protocols(head))
            sock.settimeout(5)
            sock.recv(65536)

    server: ScriptedHTTPServer = scripted_http(handler, tls=tls.server_context)
    with requests_ws.connect(server.uri("/start", host="localhost"), verify=tls.ca_path) as ws:
        assert str(ws.request.url) == f"https://localhost:{server.port}/final"


def test_uppercase_ws_uri_is_accepted(redirects: RedirectServer) -> None:
    with requests_ws.connect(redirects.url("WS", path="/final")) as ws:
        assert ws.response.status_code == 101


def test_location_that_is_not_websocket_is_refused(redirects: RedirectServer) -> None:
    redirects.location = "ftp://127.0.0.1:PORT/final"
    with pytest.raises(requests_ws.InvalidHandshake, match="not a WebSocket URI"):
        requests_ws.connect(redirects.url("ws"))
