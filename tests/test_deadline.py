"""open_timeout is one deadline for the whole opening, against peers that
trickle one byte at a time: OpenTimeout within about 0.1 s after it."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

import pytest
import requests
import requests.adapters
import requests.auth

import requests_ws
from requests_ws import OpenTimeout, connect
from requests_ws.deadline import Deadline, watched_count

from .peers.scripted_http import ScriptedHTTPServer, header, switching_protocols

OPEN_TIMEOUT = 1.0
# The contract says "about a tenth of a second"; a little more for two shared cores.
SLACK = 0.25


def _expect_open_timeout(uri: str, **kwargs: Any) -> OpenTimeout:
    started = time.monotonic()
    with pytest.raises(OpenTimeout) as info:
        connect(uri, open_timeout=OPEN_TIMEOUT, **kwargs)
    elapsed = time.monotonic() - started
    assert OPEN_TIMEOUT - 0.01 <= elapsed < OPEN_TIMEOUT + SLACK, elapsed
    error = info.value
    assert isinstance(error, TimeoutError)
    assert isinstance(error, requests.exceptions.Timeout)
    assert "open_timeout" in str(error)
    return error


def _nothing_watched() -> None:
    # The deadline fired: the process's one watchdog thread holds nothing of
    # this opening any more (and there is no thread per opening to leave).
    assert watched_count() == 0
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("requests_ws-open-deadlines") <= 1, names


def test_101_trickled_one_byte_every_200_ms(no_leaks: None, scripted_http: Any) -> None:
    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: server.trickle(sock, switching_protocols(head))
    )
    _expect_open_timeout(server.uri())
    _nothing_watched()


def test_endless_100_continue(no_leaks: None, scripted_http: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        while not server.stop_event.wait(0.05):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    server: ScriptedHTTPServer = scripted_http(handler)
    _expect_open_timeout(server.uri())


def test_slow_403_body(no_leaks: None, scripted_http: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000\r\n\r\n")
        server.trickle(sock, b"x" * 1000, 0.1)

    server: ScriptedHTTPServer = scripted_http(handler)
    error = _expect_open_timeout(server.uri())
    assert "403" in str(error)


def test_slow_tls_handshake(no_leaks: None, scripted_http: Any, tls: Any) -> None:
    def handler(sock: socket.socket, head: bytes) -> None:
        # A ServerHello that never completes: read the ClientHello, then
        # trickle junk that looks like the start of a TLS record.
        sock.recv(65536)
        server.trickle(sock, b"\x16\x03\x03" + b"\x00" * 100, 0.2)

    server: ScriptedHTTPServer = scripted_http(handler, raw_tls=True)
    uri = f"wss://localhost:{server.port}/"
    _expect_open_timeout(uri, ssl=tls.client_context)


def test_redirects_share_the_deadline(no_leaks: None, scripted_http: Any) -> None:
    # Each hop answers within 0.4 s: only one deadline for all of them stops the chain.
    def handler(sock: socket.socket, head: bytes) -> None:
        if server.stop_event.wait(0.4):
            return
        sock.sendall(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")

    server: ScriptedHTTPServer = scripted_http(handler)
    _expect_open_timeout(server.uri())
    assert 2 <= server.connections <= 3


def test_trickling_proxy_connect_answer(no_leaks: None, scripted_http: Any) -> None:
    def proxy_handler(sock: socket.socket, head: bytes) -> None:
        assert head.startswith(b"CONNECT ")
        proxy.trickle(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")

    proxy: ScriptedHTTPServer = scripted_http(proxy_handler)
    error = _expect_open_timeout("ws://backend.example:80/", proxy=f"http://127.0.0.1:{proxy.port}")
    assert "backend.example" in str(error)


def test_trickling_proxy_then_trickling_server(no_leaks: None, scripted_http: Any) -> None:
    # The proxy tunnels at once to a server that trickles its 101.
    backend: ScriptedHTTPServer = scripted_http(
        lambda sock, head: backend.trickle(sock, switching_protocols(head), 0.1)
    )

    def proxy_handler(sock: socket.socket, head: bytes) -> None:
        upstream = socket.create_connection(("127.0.0.1", backend.port))
        sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        sock.settimeout(None)

        def pump(source: socket.socket, target: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for end in (source, target):
                    try:
                        end.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        other = threading.Thread(target=pump, args=(upstream, sock), daemon=True)
        other.start()
        pump(sock, upstream)
        other.join(5)
        upstream.close()

    proxy: ScriptedHTTPServer = scripted_http(proxy_handler)
    _expect_open_timeout(backend.uri(), proxy=f"http://127.0.0.1:{proxy.port}")


def test_deadline_does_not_cut_an_open_connection(no_leaks: None, scripted_http: Any) -> None:
    # A connection opened just before the deadline stays usable after it.
    def handler(sock: socket.socket, head: bytes) -> None:
        time.sleep(0.3)
        sock.sendall(switching_protocols(head))
        server.stop_event.wait(5)

    server: ScriptedHTTPServer = scripted_http(handler)
    ws = requests_ws.connect(server.uri(), open_timeout=0.5, ping_interval=None, close_timeout=0.1)
    try:
        time.sleep(0.4)  # past the deadline: the watchdog must be gone
        assert not ws.closed
        _nothing_watched()
    finally:
        ws.close()


def test_tls_handshake_against_silent_peer_is_bounded(no_leaks: None, scripted_http: Any) -> None:
    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: server.stop_event.wait(5), raw_tls=True
    )
    context = ssl.create_default_context()
    _expect_open_timeout(f"wss://localhost:{server.port}/", ssl=context)


def test_slow_403_body_through_a_mounted_adapter(no_leaks: None, scripted_http: Any) -> None:
    # urllib3 opens the socket; the deadline watches it once the head is read.
    def handler(sock: socket.socket, head: bytes) -> None:
        sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000\r\n\r\n")
        server.trickle(sock, b"x" * 1000, 0.1)

    server: ScriptedHTTPServer = scripted_http(handler)

    class Mounted(requests.adapters.HTTPAdapter):
        pass

    with requests.Session() as session:
        session.mount("http://", Mounted())
        started = time.monotonic()
        with pytest.raises(OpenTimeout):
            requests_ws.ws_connect(session, server.uri(), open_timeout=OPEN_TIMEOUT)
        assert time.monotonic() - started < OPEN_TIMEOUT + SLACK


def test_trickling_socks5_proxy(no_leaks: None, scripted_http: Any) -> None:
    # The SOCKS5 greeting answer comes one byte every 0.2 s.
    def handler(sock: socket.socket, head: bytes) -> None:
        sock.recv(3)  # version, one method, "no authentication"
        proxy.trickle(sock, b"\x05\x00" + b"\x05\x00\x00\x01" + b"\x00" * 6)

    proxy: ScriptedHTTPServer = scripted_http(handler, raw_tls=True)  # raw socket, no head
    _expect_open_timeout("ws://backend.example/", proxy=f"socks5h://127.0.0.1:{proxy.port}")


def test_auth_retry_shares_the_deadline(no_leaks: None, scripted_http: Any) -> None:
    # The first answer is a quick Digest challenge; the retry's 101 trickles.
    def handler(sock: socket.socket, head: bytes) -> None:
        if b"Authorization: Digest" not in head:
            sock.sendall(
                b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="r", nonce="n", '
                b'qop="auth"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        server.trickle(sock, switching_protocols(head))

    server: ScriptedHTTPServer = scripted_http(handler)
    auth = requests.auth.HTTPDigestAuth("user", "pw")
    _expect_open_timeout(server.uri(), auth=auth)
    assert server.connections == 2


def test_101_trickled_over_tls(no_leaks: None, scripted_http: Any, tls: Any) -> None:
    # After the TLS handshake the watchdog must still reach the socket.
    server: ScriptedHTTPServer = scripted_http(
        lambda sock, head: server.trickle(sock, switching_protocols(head)),
        tls=tls.server_context,
    )
    _expect_open_timeout(f"wss://localhost:{server.port}/", verify=tls.ca_path)


def test_trickling_https_proxy(no_leaks: None, scripted_http: Any, tls: Any) -> None:
    def proxy_handler(sock: socket.socket, head: bytes) -> None:
        proxy.trickle(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")

    proxy: ScriptedHTTPServer = scripted_http(proxy_handler, tls=tls.server_context)
    _expect_open_timeout(
        "ws://backend.example/", proxy=f"https://localhost:{proxy.port}", verify=tls.ca_path
    )


# -- the multi-round CONNECT (proxy authentication) inside the one deadline -----------

_DIGEST_407 = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Digest realm="corp", nonce="n1", qop="auth"\r\n'
    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
)


def test_proxy_reconnected_after_its_407_trickles_within_the_deadline(
    no_leaks: None, scripted_http: Any
) -> None:
    # The proxy closes after its 407; the second connection (Digest answered)
    # gets its 200 one byte at a time: that socket is watched too.
    def proxy_handler(sock: socket.socket, head: bytes) -> None:
        if header(head, "Proxy-Authorization") is None:
            sock.sendall(_DIGEST_407)
            return
        proxy.trickle(sock, b"HTTP/1.1 200 Connection established\r\n\r\n")

    proxy: ScriptedHTTPServer = scripted_http(proxy_handler)
    _expect_open_timeout(
        "ws://backend.example/",
        proxy=f"http://me:secret-pw@127.0.0.1:{proxy.port}",
        user_agent_header="merge-test/1",
    )
    _nothing_watched()
    assert proxy.connections == 2
    first, second = proxy.heads
    assert header(first, "Proxy-Authorization") is None  # nothing before the schemes
    assert (header(second, "Proxy-Authorization") or "").startswith("Digest ")
    # Every round of the exchange carries the User-Agent.
    assert header(first, "User-Agent") == header(second, "User-Agent") == "merge-test/1"


def test_rejected_proxy_credentials_carry_the_proxy_answer(
    no_leaks: None, scripted_http: Any
) -> None:
    def proxy_handler(sock: socket.socket, head: bytes) -> None:
        sock.sendall(_DIGEST_407)

    proxy: ScriptedHTTPServer = scripted_http(proxy_handler)
    with pytest.raises(requests_ws.InvalidProxyStatus) as info:
        connect(
            "ws://backend.example/",
            proxy=f"http://me:secret-pw@127.0.0.1:{proxy.port}",
            open_timeout=5,
        )
    error = info.value
    assert isinstance(error, requests_ws.ProxyError)
    assert isinstance(error.response, requests.Response)
    assert error.status == error.response.status_code == 407
    assert error.reason == error.response.reason == "Proxy Authentication Required"
    assert "Digest" in error.response.headers["Proxy-Authenticate"]
    text = str(error)
    assert "tried: Digest" in text and "offered" in text
    assert "secret-pw" not in text and "secret-pw" not in repr(error)
    _nothing_watched()


def _cut_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the watchdog shuts ``sock`` down (its peer never writes)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    assert sock.recv(1) == b""  # shut down: end of stream, not a timeout
    return time.monotonic() - started


def test_one_watchdog_fires_each_deadline_at_its_own_end() -> None:
    # The watchdog thread sleeps until the earliest end it knows: a deadline
    # that ends sooner than that wakes it, one that ends later waits its turn,
    # and one finished in time is never fired.
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        late, soon, finished = (
            Deadline(0.6, "ws://late/"),
            Deadline(0.2, "ws://soon/"),
            Deadline(0.1, "ws://done/"),
        )
        late.watch(pairs[0][0])
        soon.watch(pairs[1][0])
        finished.watch(pairs[2][0])
        finished.finish()
        assert _cut_within(pairs[1][0], 5) < 0.2 + SLACK
        assert soon.fired and not late.fired
        assert _cut_within(pairs[0][0], 5) < 0.4 + SLACK
        assert late.fired and not finished.fired
        with pytest.raises(OpenTimeout):
            late.finish()
        soon.finish(check=False)
        pairs[2][0].settimeout(0.3)
        with pytest.raises(TimeoutError):
            pairs[2][0].recv(1)  # not shut down
        assert watched_count() == 0
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()
