"""WebSocket through real proxies: squid (plain, Basic auth, Debian's CONNECT
policy, HTTPS proxy), stunnel + tinyproxy (a second HTTPS proxy), tinyproxy
with auth, dante (SOCKS4/5/5h), microsocks (SOCKS5 with auth), and the
environment's proxy variables in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
import requests

import requests_ws
from requests_ws import ProxyError


def echo_once(ws: requests_ws.ClientConnection, text: str = "through the proxy") -> None:
    ws.send(text)
    assert ws.recv(timeout=5) == text


@pytest.fixture
def plain_server(ws_server: Any) -> Any:
    return ws_server()


@pytest.fixture
def tls_server(ws_server: Any, tls: Any) -> Any:
    return ws_server(ssl_context=tls.server_context)


# -- squid ------------------------------------------------------------------------


def test_ws_and_wss_through_squid(squid: Any, plain_server: Any, tls_server: Any, tls: Any) -> None:
    proxy = f"http://127.0.0.1:{squid.plain}"
    with requests_ws.connect(plain_server.uri, proxy=proxy) as ws:
        echo_once(ws)
    with requests_ws.connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo_once(ws)
    assert count_tunnels(squid, plain_server.port, 1) >= 1
    assert count_tunnels(squid, tls_server.port, 1) >= 1


def test_session_proxies_and_session_reuse(squid: Any, plain_server: Any, ws_server: Any) -> None:
    import http

    def plain_http(connection: Any, request: Any) -> Any:
        if request.headers.get("Upgrade") is None:
            return connection.respond(http.HTTPStatus.OK, "ordinary\n")
        return None

    web = ws_server(process_request=plain_http)
    session = requests_ws.Session()
    session.proxies = {"http": f"http://127.0.0.1:{squid.plain}"}
    with session.ws_connect(plain_server.uri) as ws:
        echo_once(ws)
    response = session.get(web.uri.replace("ws://", "http://"))
    assert response.status_code == 200 and response.text == "ordinary\n"


def test_squid_basic_proxy_auth(squid: Any, plain_server: Any, tls_server: Any, tls: Any) -> None:
    proxy = f"http://{squid.user}:{squid.password}@127.0.0.1:{squid.auth}"
    with requests_ws.connect(plain_server.uri, proxy=proxy) as ws:
        echo_once(ws)
    with requests_ws.connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo_once(ws)


def test_squid_407_without_credentials(squid: Any, plain_server: Any) -> None:
    with pytest.raises(ProxyError) as info:
        requests_ws.connect(plain_server.uri, proxy=f"http://127.0.0.1:{squid.auth}")
    error = info.value
    assert error.status == 407
    assert error.proxy == f"http://127.0.0.1:{squid.auth}"
    assert "407" in str(error) and "user:password" in str(error)
    assert isinstance(error, requests.exceptions.ProxyError)
    with pytest.raises(ProxyError, match="rejected the credentials"):
        requests_ws.connect(
            plain_server.uri, proxy=f"http://{squid.user}:wrong@127.0.0.1:{squid.auth}"
        )


def test_squid_default_connect_policy_403(squid: Any, plain_server: Any) -> None:
    with pytest.raises(ProxyError) as info:
        requests_ws.connect(plain_server.uri, proxy=f"http://127.0.0.1:{squid.strict}")
    assert info.value.status == 403
    assert "403" in str(info.value) and "443" in str(info.value)


def test_squid_as_https_proxy(squid: Any, plain_server: Any, tls_server: Any, tls: Any) -> None:
    proxy = f"https://localhost:{squid.tls}"
    with requests_ws.connect(plain_server.uri, proxy=proxy, proxy_ssl=tls.client_context) as ws:
        echo_once(ws)
    # TLS inside TLS, the proxy verified with the session's verify:
    with requests_ws.connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo_once(ws)
        assert type(ws.socket).__name__ == "SSLTransport"


def test_https_proxy_is_never_silently_unverified(squid: Any, plain_server: Any) -> None:
    with pytest.raises(ProxyError, match="verification of HTTPS proxy"):
        requests_ws.connect(plain_server.uri, proxy=f"https://localhost:{squid.tls}")


def test_tls_in_tls_close_does_not_stall(squid: Any, tls_server: Any, tls: Any) -> None:
    proxy = f"https://localhost:{squid.tls}"
    for _ in range(10):
        ws = requests_ws.connect(tls_server.uri, proxy=proxy, verify=tls.ca_path, close_timeout=5)
        echo_once(ws)
        started = time.monotonic()
        ws.close()
        assert time.monotonic() - started < 1


# -- stunnel + tinyproxy, tinyproxy ---------------------------------------------------


def test_stunnel_tinyproxy_https_proxy(
    stunnel_proxy: Any, plain_server: Any, tls_server: Any, tls: Any
) -> None:
    proxy = f"https://127.0.0.1:{stunnel_proxy.port}"
    with requests_ws.connect(plain_server.uri, proxy=proxy, proxy_ssl=tls.client_context) as ws:
        echo_once(ws)
    with requests_ws.connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo_once(ws)


def test_tinyproxy_with_basic_auth(tinyproxy: Any, plain_server: Any) -> None:
    proxy = f"http://tinyuser:tiny-pass@127.0.0.1:{tinyproxy.port}"
    with requests_ws.connect(plain_server.uri, proxy=proxy) as ws:
        echo_once(ws)
    with pytest.raises(ProxyError) as info:
        requests_ws.connect(plain_server.uri, proxy=f"http://127.0.0.1:{tinyproxy.port}")
    assert info.value.status == 407


# -- SOCKS -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4"])
def test_socks_through_dante(
    dante: Any, plain_server: Any, tls_server: Any, tls: Any, scheme: str
) -> None:
    proxy = f"{scheme}://127.0.0.1:{dante.port}"
    with requests_ws.connect(plain_server.uri, proxy=proxy) as ws:
        echo_once(ws)
    with requests_ws.connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo_once(ws)


def test_socks5_with_auth_through_microsocks(microsocks: Any, plain_server: Any) -> None:
    good = f"socks5://{microsocks.user}:{microsocks.password}@127.0.0.1:{microsocks.port}"
    with requests_ws.connect(plain_server.uri, proxy=good) as ws:
        echo_once(ws)
    session = requests_ws.Session()
    session.proxies = {"http": good}
    with session.ws_connect(plain_server.uri) as ws:
        echo_once(ws)
    bad = f"socks5://{microsocks.user}:wrong@127.0.0.1:{microsocks.port}"
    with pytest.raises(ProxyError) as info:
        requests_ws.connect(plain_server.uri, proxy=bad)
    assert f"127.0.0.1:{microsocks.port}" in str(info.value)


def test_unreachable_proxy_is_a_proxy_error(plain_server: Any) -> None:
    from .peers.proxies import free_port

    port = free_port()
    with pytest.raises(ProxyError, match=f"127.0.0.1:{port}"):
        requests_ws.connect(plain_server.uri, proxy=f"http://127.0.0.1:{port}")
    with pytest.raises(ProxyError, match="SOCKS"):
        requests_ws.connect(plain_server.uri, proxy=f"socks5://127.0.0.1:{port}")


# -- the environment ---------------------------------------------------------------


def run_client(uri: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """Connect from a fresh process with exactly these proxy variables."""
    code = textwrap.dedent(
        f"""
        import requests_ws
        with requests_ws.connect({uri!r}{"".join(", " + e for e in extra)}) as ws:
            ws.send("env")
            assert ws.recv(timeout=5) == "env"
        print("OK")
        """
    )
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.lower().endswith("_proxy") and name not in ("REQUESTS_CA_BUNDLE",)
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )


def count_tunnels(squid: Any, port: int, at_least: int = 0) -> int:
    """CONNECT tunnels to ``port`` in squid's log (which it writes as tunnels end)."""
    deadline = time.monotonic() + 3
    while True:
        count = sum(1 for line in squid.access_lines() if "CONNECT" in line and f":{port}" in line)
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def refusing_proxy() -> str:
    from .peers.proxies import free_port

    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_environment_proxy_for_ws(squid: Any, plain_server: Any, variable: str) -> None:
    before = count_tunnels(squid, plain_server.port)
    result = run_client(plain_server.uri, {variable: f"http://127.0.0.1:{squid.plain}"})
    assert result.returncode == 0, result.stderr
    assert count_tunnels(squid, plain_server.port, before + 1) == before + 1


def test_environment_https_proxy_for_wss(squid: Any, tls_server: Any, tls: Any) -> None:
    env = {
        "HTTPS_PROXY": f"http://127.0.0.1:{squid.plain}",
        "HTTP_PROXY": refusing_proxy(),
        "REQUESTS_CA_BUNDLE": tls.ca_path,
    }
    before = count_tunnels(squid, tls_server.port)
    result = run_client(tls_server.uri, env)
    assert result.returncode == 0, result.stderr
    assert count_tunnels(squid, tls_server.port, before + 1) == before + 1


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "127.0.0.0/8", "example.com,127.0.0.1"])
def test_no_proxy_bypasses(plain_server: Any, no_proxy: str) -> None:
    env = {"HTTP_PROXY": refusing_proxy(), "ALL_PROXY": refusing_proxy(), "NO_PROXY": no_proxy}
    result = run_client(plain_server.uri, env)
    assert result.returncode == 0, result.stderr


def test_no_proxy_domain_suffix(plain_server: Any) -> None:
    uri = plain_server.uri.replace("127.0.0.1", "localhost")
    env = {"HTTP_PROXY": refusing_proxy(), "NO_PROXY": ".localhost,localhost"}
    result = run_client(uri, env)
    assert result.returncode == 0, result.stderr


def test_environment_proxy_that_refuses_is_reported(plain_server: Any) -> None:
    proxy = refusing_proxy()
    result = run_client(plain_server.uri, {"HTTP_PROXY": proxy})
    assert result.returncode != 0
    assert "ProxyError" in result.stderr and proxy in result.stderr


def test_proxy_none_ignores_the_environment(plain_server: Any) -> None:
    result = run_client(plain_server.uri, {"HTTP_PROXY": refusing_proxy()}, "proxy=None")
    assert result.returncode == 0, result.stderr


def test_ws_behind_a_proxy_with_a_mounted_adapter(squid: Any, plain_server: Any) -> None:
    """A mounted adapter would forward ws:// through the proxy (and lose Upgrade):
    the handshake tunnels instead."""
    import requests.adapters

    class Mounted(requests.adapters.HTTPAdapter):
        pass

    session = requests_ws.Session()
    session.mount("http://", Mounted(max_retries=1))
    session.proxies = {"http": f"http://127.0.0.1:{squid.plain}"}
    before = count_tunnels(squid, plain_server.port)
    with session.ws_connect(plain_server.uri) as ws:
        echo_once(ws)
    assert count_tunnels(squid, plain_server.port, before + 1) == before + 1
