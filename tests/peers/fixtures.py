"""Pytest fixtures for the end-to-end tests: peers, TLS material, hygiene."""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme

from requests_ws.deadline import watched_count

from .raw_peer import RawServer, Script
from .ws_peer import Handler, WsPeer, echo

_ENV_VARS = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NETRC",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's proxy and CA variables must not leak into tests."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@dataclass
class TLSFiles:
    ca: trustme.CA
    ca_path: str
    client_context: ssl.SSLContext
    server_context: ssl.SSLContext
    client_cert_path: str
    client_key_path: str
    mtls_server_context: ssl.SSLContext


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    ca = trustme.CA()
    directory = tmp_path_factory.mktemp("tls")
    ca_path = str(directory / "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    server_cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)
    client_cert = ca.issue_cert("client@example.com")
    client_cert_path = str(directory / "client.pem")
    client_key_path = str(directory / "client.key")
    client_cert.cert_chain_pems[0].write_to_path(client_cert_path)
    client_cert.private_key_pem.write_to_path(client_key_path)
    mtls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(mtls)
    ca.configure_trust(mtls)
    mtls.verify_mode = ssl.CERT_REQUIRED
    return TLSFiles(
        ca, ca_path, client_context, server_context, client_cert_path, client_key_path, mtls
    )


@pytest.fixture
def ws_server() -> Iterator[Callable[..., WsPeer]]:
    """Factory: ``ws_server(handler=echo, **serve_kwargs)`` starts a websockets server."""
    peers: list[WsPeer] = []

    def start(handler: Handler = echo, **kwargs: Any) -> WsPeer:
        peer = WsPeer(handler, **kwargs).start()
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.stop()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """Factory: ``raw_server(script, **handshake_options)`` starts a scripted peer;
    script errors are raised at teardown."""
    servers: list[RawServer] = []

    def start(script: Script, **kwargs: Any) -> RawServer:
        server = RawServer(script, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    for server in servers:
        server.check()


# The process's one open-deadline watchdog (requests_ws.deadline) outlives
# every opening, as a thread pool would: it is not a client's thread, but it
# must watch nothing once the test's openings are over.
_PROCESS_THREADS = frozenset({"requests_ws-open-deadlines"})


def _client_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("requests_ws-") and t.name not in _PROCESS_THREADS
    ]


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail if the test leaves client threads or file descriptors behind."""
    before = len(os.listdir("/proc/self/fd"))
    yield
    deadline = time.monotonic() + 3
    while _client_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _client_threads(), f"client threads left running: {_client_threads()}"
    assert watched_count() == 0, f"{watched_count()} openings left on the deadline watchdog"
    after = len(os.listdir("/proc/self/fd"))
    while after > before and time.monotonic() < deadline:
        time.sleep(0.02)
        after = len(os.listdir("/proc/self/fd"))
    assert after <= before, f"{after - before} file descriptors leaked"


# -- real proxies ------------------------------------------------------------------


def _start_proxy(factory: Callable[[], Any]) -> Any:
    """Start a proxy; under CI (CI=true) a proxy that cannot start fails the test."""
    from .proxies import ProxyUnavailable

    try:
        return factory()
    except ProxyUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"proxy unavailable under CI: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def squid(tls: TLSFiles) -> Iterator[Any]:
    from .proxies import Squid

    proxy = _start_proxy(lambda: Squid(tls.ca.issue_cert("localhost", "127.0.0.1")))
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def dante() -> Iterator[Any]:
    from .proxies import Dante

    proxy = _start_proxy(Dante)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def microsocks() -> Iterator[Any]:
    from .proxies import Microsocks

    proxy = _start_proxy(Microsocks)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def tinyproxy() -> Iterator[Any]:
    from .proxies import Tinyproxy

    proxy = _start_proxy(lambda: Tinyproxy(basic_auth=("tinyuser", "tiny-pass")))
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def stunnel_proxy(tls: TLSFiles) -> Iterator[Any]:
    """stunnel (TLS) in front of a tinyproxy without auth: a second HTTPS proxy."""
    from .proxies import Stunnel, Tinyproxy

    backend = _start_proxy(Tinyproxy)
    front = _start_proxy(lambda: Stunnel(backend.port, tls.ca.issue_cert("localhost", "127.0.0.1")))
    yield front
    front.stop()
    backend.stop()


@pytest.fixture
def scripted_http() -> Iterator[Callable[..., Any]]:
    """Factory: ``scripted_http(handler, tls=None)`` starts a scripted HTTP peer
    (tests/peers/scripted_http.py); handler errors are raised at teardown."""
    from .scripted_http import ScriptedHTTPServer

    servers: list[ScriptedHTTPServer] = []

    def start(handler: Any, **kwargs: Any) -> ScriptedHTTPServer:
        server = ScriptedHTTPServer(handler, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
