"""The requests door: auth, cookies, redirects, TLS settings, mounted adapters,
headers and errors of the handshake, against real servers."""

from __future__ import annotations

import base64
import hashlib
import http
import os
import socket
import ssl
import threading
import time
import warnings
from typing import Any

import pytest
import requests
import requests.adapters
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

import requests_ws
from requests_ws import InvalidHandshake, InvalidStatus, OpenTimeout

# -- servers with handshake hooks ------------------------------------------------


def basic_auth_check(user: str, password: str) -> Any:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != expected:
            response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "who are you?\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="test"'
            return response
        return None

    return process_request


def digest_auth_check(user: str, password: str) -> Any:
    realm, nonce = "test-realm", os.urandom(8).hex()

    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Digest "):
            fields = {}
            for part in header[7:].split(","):
                name, _, value = part.strip().partition("=")
                fields[name] = value.strip('"')
            ha1 = h(f"{user}:{realm}:{password}")
            ha2 = h(f"GET:{fields.get('uri')}")
            expected = h(f"{ha1}:{nonce}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
            if fields.get("username") == user and fields.get("response") == expected:
                return None
        response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "digest required\n")
        response.headers["WWW-Authenticate"] = (
            f'Digest realm="{realm}", nonce="{nonce}", qop="auth", algorithm=MD5'
        )
        return response

    return process_request


def test_basic_auth_from_session_argument_and_url(ws_server: Any) -> None:
    server = ws_server(process_request=basic_auth_check("alice", "s3cret"))
    session = requests_ws.Session()
    session.auth = ("alice", "s3cret")
    with session.ws_connect(server.uri) as ws:
        ws.send("session.auth")
        assert ws.recv() == "session.auth"
    with requests_ws.connect(server.uri, auth=("alice", "s3cret")) as ws:
        assert ws.response.status_code == 101
    url = server.uri.replace("ws://", "ws://alice:s3cret@")
    with requests_ws.connect(url) as ws:
        assert ws.response.status_code == 101
    with pytest.raises(InvalidStatus) as info:
        requests_ws.connect(server.uri, auth=("alice", "wrong"))
    assert info.value.response.status_code == 401
    assert info.value.response.text == "who are you?\n"
    assert isinstance(info.value, requests.exceptions.HTTPError)
    assert "401" in str(info.value) and server.uri in str(info.value)
    assert "Basic" in str(info.value) and "who are you?" in str(info.value)


def test_digest_auth_retries_within_open_timeout(ws_server: Any) -> None:
    server = ws_server(process_request=digest_auth_check("bob", "pa55"))
    auth = requests.auth.HTTPDigestAuth("bob", "pa55")
    with requests_ws.connect(server.uri, auth=auth, open_timeout=5) as ws:
        ws.send("digest")
        assert ws.recv() == "digest"
        assert ws.request.headers["Authorization"].startswith("Digest ")
        assert [earlier.status_code for earlier in ws.response.history] == [401]
    with pytest.raises(InvalidStatus):
        requests_ws.connect(server.uri, auth=requests.auth.HTTPDigestAuth("bob", "nope"))


def test_custom_auth_base(ws_server: Any) -> None:
    class Bearer(requests.auth.AuthBase):
        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            request.headers["Authorization"] = "Bearer token-123"
            return request

    server = ws_server()
    with requests_ws.connect(server.uri, auth=Bearer()):
        pass
    assert server.request_headers[-1]["Authorization"] == "Bearer token-123"


def test_netrc_when_trust_env(ws_server: Any, tmp_path: Any, monkeypatch: Any) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\nlogin carol\npassword from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server = ws_server(process_request=basic_auth_check("carol", "from-netrc"))
    with requests_ws.connect(server.uri) as ws:
        assert ws.response.status_code == 101
    session = requests_ws.Session()
    session.trust_env = False
    with pytest.raises(InvalidStatus):
        session.ws_connect(server.uri)


def test_cookies_both_ways(ws_server: Any, tls: Any) -> None:
    def process_response(
        connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        response.headers["Set-Cookie"] = "session=from-101; Path=/"
        return response

    server = ws_server(process_response=process_response)
    session = requests_ws.Session()
    session.cookies.set("theme", "dark", domain="127.0.0.1", path="/")
    session.cookies.set("secret", "only-tls", domain="127.0.0.1", path="/", secure=True)
    with session.ws_connect(server.uri, cookies={"extra": "1"}):
        pass
    sent = server.request_headers[-1]["Cookie"]
    assert "theme=dark" in sent and "extra=1" in sent
    assert "secret" not in sent, "a Secure cookie went over ws://"
    assert session.cookies.get("session") == "from-101"

    tls_server = ws_server(ssl_context=tls.server_context)
    tls_uri = tls_server.uri.replace("localhost", "127.0.0.1")
    with session.ws_connect(tls_uri, ssl=tls.client_context, server_hostname="localhost"):
        pass
    assert "secret=only-tls" in tls_server.request_headers[-1]["Cookie"]


def test_redirects(ws_server: Any) -> None:
    target = ws_server()

    def redirect(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/old":
            response = connection.respond(http.HTTPStatus.FOUND, "moved\n")
            response.headers["Location"] = target.uri
            response.headers["Set-Cookie"] = "from-redirect=yes; Path=/"
            return response
        if request.path == "/relative":
            response = connection.respond(http.HTTPStatus.PERMANENT_REDIRECT, "")
            response.headers["Location"] = "/old"
            return response
        if request.path == "/loop":
            response = connection.respond(http.HTTPStatus.TEMPORARY_REDIRECT, "")
            response.headers["Location"] = "/loop"
            return response
        return None

    server = ws_server(process_request=redirect)
    session = requests_ws.Session()
    with session.ws_connect(server.uri + "old") as ws:
        ws.send("redirected")
        assert ws.recv() == "redirected"
        assert ws.response.history[0].status_code == 302
    assert session.cookies.get("from-redirect") == "yes"
    assert "from-redirect=yes" in target.request_headers[-1]["Cookie"]
    with requests_ws.connect(server.uri + "relative") as ws:
        assert [r.status_code for r in ws.response.history] == [308, 302]
    with pytest.raises(requests.exceptions.TooManyRedirects):
        requests_ws.connect(server.uri + "loop")
    with pytest.raises(InvalidStatus) as info:
        requests_ws.connect(server.uri + "old", allow_redirects=False)
    assert info.value.response.status_code == 302


def test_credentials_dropped_across_hosts(ws_server: Any) -> None:
    target = ws_server()
    other_host_uri = target.uri.replace("127.0.0.1", "localhost")

    def redirect(connection: ServerConnection, request: Request) -> Response | None:
        response = connection.respond(http.HTTPStatus.FOUND, "")
        response.headers["Location"] = other_host_uri
        return response

    server = ws_server(process_request=redirect)
    with requests_ws.connect(server.uri, auth=("dave", "pw")):
        pass
    assert "Authorization" not in target.request_headers[-1]


def test_redirect_from_wss_to_ws_is_refused(ws_server: Any, tls: Any) -> None:
    plain = ws_server()

    def redirect(connection: ServerConnection, request: Request) -> Response | None:
        response = connection.respond(http.HTTPStatus.FOUND, "")
        response.headers["Location"] = plain.uri
        return response

    server = ws_server(ssl_context=tls.server_context, process_request=redirect)
    with pytest.raises(InvalidHandshake, match="wss:// to ws://"):
        requests_ws.connect(server.uri, verify=tls.ca_path)


def test_verify_and_ca_bundle_environment(ws_server: Any, tls: Any, monkeypatch: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    with pytest.raises(requests.exceptions.SSLError, match="verification"):
        requests_ws.connect(server.uri)
    monkeypatch.setenv("CURL_CA_BUNDLE", tls.ca_path)
    with requests_ws.connect(server.uri) as ws:
        assert ws.response.status_code == 101
    monkeypatch.delenv("CURL_CA_BUNDLE")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path)
    with requests_ws.connect(server.uri) as ws:
        assert ws.response.status_code == 101
    session = requests_ws.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.ws_connect(server.uri)
    with session.ws_connect(server.uri, verify=False) as ws:
        assert ws.response.status_code == 101
    # ssl= wins over verify:
    with requests_ws.connect(server.uri, ssl=tls.client_context, verify=False) as ws:
        assert ws.response.status_code == 101


def test_client_certificates(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.mtls_server_context)
    cert = (tls.client_cert_path, tls.client_key_path)
    with requests_ws.connect(server.uri, verify=tls.ca_path, cert=cert) as ws:
        ws.send("mtls")
        assert ws.recv() == "mtls"
    with pytest.raises(requests.exceptions.RequestException):
        requests_ws.connect(server.uri, verify=tls.ca_path)


def test_mounted_adapter_serves_wss(ws_server: Any, tls: Any) -> None:
    used = []

    class CorporateAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = tls.client_context
            super().init_poolmanager(*args, **kwargs)

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            used.append(request.url)
            return super().send(request, **kwargs)

    server = ws_server(ssl_context=tls.server_context)
    session = requests_ws.Session()
    session.mount("https://", CorporateAdapter())
    with session.ws_connect(server.uri) as ws:
        ws.send("through the adapter")
        assert ws.recv() == "through the adapter"
    assert used == [server.uri.replace("wss://", "https://")]


def test_session_keeps_working_after_many_connections(no_leaks: None, ws_server: Any) -> None:
    """With a mounted adapter the upgrade uses the session's pool: it must be
    detached so that ordinary requests keep working, without pool warnings."""

    class Counting(requests.adapters.HTTPAdapter):
        pass

    server = ws_server()

    def http_ok(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade") is None:
            return connection.respond(http.HTTPStatus.OK, "plain http\n")
        return None

    plain = ws_server(process_request=http_ok)
    session = requests_ws.Session()
    session.mount("http://", Counting(pool_maxsize=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(12):
            with session.ws_connect(server.uri) as ws:
                ws.send("x")
                assert ws.recv() == "x"
        for _ in range(3):
            response = session.get(plain.uri.replace("ws://", "http://"), headers={"Upgrade": None})
            assert response.status_code in (200, 426), response.text
    session.close()


def test_user_agent_rule(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri):
        pass
    assert server.request_headers[-1]["User-Agent"] == requests_ws.USER_AGENT
    session = requests_ws.Session()
    session.headers["User-Agent"] = "corp-agent/2"
    with session.ws_connect(server.uri):
        pass
    assert server.request_headers[-1]["User-Agent"] == "corp-agent/2"
    with session.ws_connect(server.uri, headers={"User-Agent": "per-call/3"}):
        pass
    assert server.request_headers[-1]["User-Agent"] == "per-call/3"
    with session.ws_connect(server.uri, user_agent_header="explicit/4"):
        pass
    assert server.request_headers[-1]["User-Agent"] == "explicit/4"
    with session.ws_connect(server.uri, user_agent_header=None) as ws:
        pass
    assert "User-Agent" not in server.request_headers[-1]
    # request.headers shows what went on the wire, not urllib3's skip marker
    assert "User-Agent" not in ws.request.headers
    # additional_headers wins over everything, as in websockets
    with session.ws_connect(
        server.uri,
        user_agent_header="explicit/4",
        headers={"User-Agent": "per-call/3"},
        additional_headers={"user-agent": "additional/5"},
    ) as ws:
        pass
    assert server.request_headers[-1].get_all("User-Agent") == ["additional/5"]
    assert ws.request.headers["User-Agent"] == "additional/5"
    with session.ws_connect(
        server.uri, user_agent_header=None, additional_headers=[("User-Agent", "additional/6")]
    ):
        pass
    assert server.request_headers[-1]["User-Agent"] == "additional/6"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, requests_ws.USER_AGENT),
        ({"user_agent_header": "explicit/1"}, "explicit/1"),
        ({"additional_headers": {"User-Agent": "additional/2"}}, "additional/2"),
        ({"user_agent_header": None}, None),
    ],
)
def test_connect_request_to_a_proxy_carries_the_user_agent(
    scripted_http: Any, kwargs: dict[str, Any], expected: str | None
) -> None:
    from .peers.scripted_http import header

    proxy = scripted_http(
        lambda sock, head: sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    )
    with pytest.raises(requests_ws.InvalidProxyStatus):
        requests_ws.connect(
            "ws://backend.example/", proxy=f"http://127.0.0.1:{proxy.port}", **kwargs
        )
    assert proxy.heads[-1].startswith(b"CONNECT backend.example:80 ")
    assert header(proxy.heads[-1], "User-Agent") == expected


def test_headers_params_origin_and_hooks(ws_server: Any) -> None:
    server = ws_server()
    seen = []
    session = requests_ws.Session()
    session.headers["X-Session"] = "s"
    session.hooks["response"].append(lambda response, **_: seen.append(response.status_code))
    with session.ws_connect(
        server.uri,
        headers={"X-Call": "c"},
        additional_headers={"X-Additional": "a"},
        params={"q": "1"},
        origin="https://origin.example",
    ) as ws:
        ws.send("hooks")
        assert ws.recv() == "hooks"
    headers = server.request_headers[-1]
    assert (headers["X-Session"], headers["X-Call"], headers["X-Additional"]) == ("s", "c", "a")
    assert headers["Origin"] == "https://origin.example"
    assert ws.request.url.endswith("/?q=1")
    assert seen == [101]


def test_invalid_uri_before_any_io() -> None:
    for uri in ["http://x/", "ftp://x/", "ws://", "ws://host:notaport/", "wss://x/#frag", 42]:
        with pytest.raises(requests_ws.InvalidURI) as info:
            requests_ws.connect(uri)  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)


def test_connection_refused_is_a_requests_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(requests.exceptions.ConnectionError, match=f"127.0.0.1:{port}"):
        requests_ws.connect(f"ws://127.0.0.1:{port}/")


def test_open_timeout_against_a_silent_server() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    started = time.monotonic()
    with pytest.raises(OpenTimeout) as info:
        requests_ws.connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", open_timeout=0.5)
    assert time.monotonic() - started < 2
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, requests.exceptions.Timeout)
    thread.join(2)
    for sock, _ in accepted:
        sock.close()
    listener.close()


def test_bad_handshake_answers(raw_server: Any) -> None:
    server = raw_server(lambda peer: None, accept="bm90IHRoZSByaWdodCBrZXk=")
    with pytest.raises(requests_ws.InvalidHeader, match="Sec-WebSocket-Accept"):
        requests_ws.connect(server.uri)
    server = raw_server(lambda peer: None, drop_headers=("Upgrade",))
    with pytest.raises(requests_ws.InvalidUpgrade, match="Upgrade"):
        requests_ws.connect(server.uri)
    server = raw_server(lambda peer: None, headers={"Sec-WebSocket-Extensions": "x-unknown"})
    with pytest.raises(requests_ws.NegotiationError, match="x-unknown"):
        requests_ws.connect(server.uri)
    server = raw_server(lambda peer: None, headers={"Sec-WebSocket-Protocol": "chat"})
    with pytest.raises(requests_ws.NegotiationError, match="chat"):
        requests_ws.connect(server.uri)
    server = raw_server(lambda peer: None, status=b"403 Forbidden")
    with pytest.raises(InvalidStatus, match="403"):
        requests_ws.connect(server.uri)


def test_sock_given_with_tls(ws_server: Any, tls: Any) -> None:
    server = ws_server(ssl_context=tls.server_context)
    sock = socket.create_connection(("127.0.0.1", server.port))
    context = ssl.create_default_context(cafile=tls.ca_path)
    with requests_ws.connect(server.uri, sock=sock, ssl=context) as ws:
        ws.send("tls over sock")
        assert ws.recv() == "tls over sock"


def test_no_socket_leaks_on_refusals_redirects_and_auth_retries(
    no_leaks: None, ws_server: Any
) -> None:
    target = ws_server(process_request=digest_auth_check("erin", "pw"))

    def routes(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/forbidden":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "no\n")
        response = connection.respond(http.HTTPStatus.FOUND, "")
        response.headers["Location"] = target.uri
        return response

    server = ws_server(process_request=routes)
    auth = requests.auth.HTTPDigestAuth("erin", "pw")
    kept: list[object] = []  # a user keeps errors and connections around
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(10):
        with pytest.raises(InvalidStatus) as info:
            requests_ws.connect(server.uri + "forbidden")
        kept.append(info.value)
        with requests_ws.connect(server.uri + "redirect", auth=auth) as ws:
            ws.send("ok")
            assert ws.recv() == "ok"
        kept.append(ws)
    time.sleep(0.2)
    assert len(os.listdir("/proc/self/fd")) <= before + 1, "sockets stay open"
