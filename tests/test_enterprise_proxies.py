"""Enterprise proxies end to end: Digest, NTLM and Negotiate (a real MIT KDC)
through squid, several schemes at once, a squid that closes after each 407,
Digest SHA-256 and stale nonces and a custom scheme through a scripted proxy,
PAC files through pypac, and mitmproxy intercepting TLS.

Request counts per connection come from squid's access log (it names the
client's port on each line). curl runs against the same ports as the
reference client, so a failure here is known to be ours."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import requests_ws
from requests_ws import InvalidProxyStatus, ProxyError
from requests_ws.proxy_auth import parse_challenges, process_memory

from .peers.auth_proxy import AuthProxy, Policy
from .peers.fixtures import _start_proxy

pytestmark = pytest.mark.timeout(180)


# -- peers, one of each per module ------------------------------------------------------


@pytest.fixture(scope="module")
def kdc() -> Iterator[Any]:
    from .peers.kdc import KDC

    server = _start_proxy(KDC)
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)
    yield server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


@pytest.fixture(scope="module")
def esquid(kdc: Any, tls: Any) -> Iterator[Any]:
    from .peers.enterprise import EnterpriseSquid

    proxy = _start_proxy(lambda: EnterpriseSquid(kdc, tls.ca.issue_cert("localhost", "127.0.0.1")))
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def closing_squid(kdc: Any, tls: Any) -> Iterator[Any]:
    from .peers.enterprise import EnterpriseSquid

    proxy = _start_proxy(
        lambda: EnterpriseSquid(kdc, tls.ca.issue_cert("localhost", "127.0.0.1"), closing=True)
    )
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def mitm(tls: Any) -> Iterator[Any]:
    from .peers.mitm import Mitmdump

    proxy = _start_proxy(lambda: Mitmdump(tls.ca_path))
    yield proxy
    proxy.stop()


@pytest.fixture
def scripted() -> Iterator[Any]:
    proxies: list[AuthProxy] = []

    def start(**policy: Any) -> AuthProxy:
        proxy = AuthProxy(Policy(**policy))
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


@pytest.fixture(autouse=True)
def fresh_process_memory() -> None:
    """Each test starts with a process that has seen no proxy."""
    process_memory().clear()


@pytest.fixture
def plain_server(ws_server: Any) -> Any:
    return ws_server()


@pytest.fixture
def tls_server(ws_server: Any, tls: Any) -> Any:
    return ws_server(ssl_context=tls.server_context)


@pytest.fixture
def proxy_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="requests_ws.proxy")
    return caplog


def echo(ws: requests_ws.ClientConnection, text: str = "through the proxy") -> None:
    ws.send(text)
    assert ws.recv(timeout=5) == text


DIGEST = "digestuser:digest-pass"
PASSWORDS = ("digest-pass", "alice-pass", "sha-pass", "ntlm-pass", "secret-token")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in PASSWORDS:
            assert secret not in text


def statuses(squid: Any, port: int, tunnels: int) -> list[list[str]]:
    return squid.connections(port, tunnels)


# -- parsing ---------------------------------------------------------------------------


def test_parse_challenges() -> None:
    found = parse_challenges(
        [
            'Negotiate, NTLM, Digest realm="a, b", nonce="n\\"1", qop="auth,auth-int", '
            'algorithm=SHA-256, stale=true, Basic realm="x"',
            "NTLM TlRMTVNTUAACAAAA==",
        ]
    )
    assert [c.scheme for c in found] == ["Negotiate", "NTLM", "Digest", "Basic", "NTLM"]
    digest = found[2]
    assert digest.params == {
        "realm": "a, b",
        "nonce": 'n"1',
        "qop": "auth,auth-int",
        "algorithm": "SHA-256",
        "stale": "true",
    }
    assert found[3].params == {"realm": "x"}
    assert found[4].token == "TlRMTVNTUAACAAAA=="
    assert parse_challenges(['Basic realm="unterminated']) == [parse_challenges(["Basic"])[0]]


# -- Digest through squid ----------------------------------------------------------------


def test_digest_ws_and_wss_then_remembered(
    esquid: Any, plain_server: Any, tls_server: Any, tls: Any, proxy_log: Any
) -> None:
    proxy = esquid.url("digest", DIGEST)
    session = requests_ws.Session()
    with session.ws_connect(plain_server.uri, proxy=proxy) as ws:
        echo(ws)
    # The first tunnel: the proxy names its schemes (407), then Digest (200), on one connection.
    assert statuses(esquid, plain_server.port, 1) == [["TCP_DENIED/407", "TCP_TUNNEL/200"]]
    with session.ws_connect(plain_server.uri, proxy=proxy) as ws:
        echo(ws)
    # Remembered: Digest with the last nonce in the first request.
    assert sorted(statuses(esquid, plain_server.port, 2)) == [
        ["TCP_DENIED/407", "TCP_TUNNEL/200"],
        ["TCP_TUNNEL/200"],
    ]
    with session.ws_connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo(ws)
    assert statuses(esquid, tls_server.port, 1) == [["TCP_TUNNEL/200"]]
    assert any("Digest ****" in r.getMessage() for r in proxy_log.records)
    assert_no_secret(*(r.getMessage() for r in proxy_log.records))


def test_connect_without_session_remembers_per_process(esquid: Any, plain_server: Any) -> None:
    proxy = esquid.url("digest", DIGEST)
    for _ in range(3):
        with requests_ws.connect(plain_server.uri, proxy=proxy) as ws:
            echo(ws)
    assert sorted(statuses(esquid, plain_server.port, 3)) == [
        ["TCP_DENIED/407", "TCP_TUNNEL/200"],
        ["TCP_TUNNEL/200"],
        ["TCP_TUNNEL/200"],
    ]


def test_digest_memory_shared_by_threads(esquid: Any, plain_server: Any, no_leaks: None) -> None:
    """Tunnels opened at once share the remembered nonce (each with its own
    count); whatever order they reach squid in, every one gets through."""
    import threading

    session = requests_ws.Session()
    proxy = esquid.url("digest", DIGEST)
    with session.ws_connect(plain_server.uri, proxy=proxy) as ws:
        echo(ws)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with session.ws_connect(plain_server.uri, proxy=proxy) as ws:
                echo(ws)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(statuses(esquid, plain_server.port, 9)) == 9


def test_digest_rejected_names_scheme_and_offer(esquid: Any, plain_server: Any) -> None:
    with pytest.raises(InvalidProxyStatus) as info:
        requests_ws.connect(plain_server.uri, proxy=esquid.url("digest", "digestuser:wrong-pass"))
    error = info.value
    assert error.status == 407
    assert isinstance(error, ProxyError) and isinstance(error, requests.exceptions.ProxyError)
    text = str(error)
    assert "Digest" in text and "tried: Digest" in text and "offered: Digest (MD5)" in text
    assert error.reason == "Proxy Authentication Required"
    assert "wrong-pass" not in text and "wrong-pass" not in repr(error)


def test_no_password_in_a_proxy_repr() -> None:
    from requests_ws.routes import Proxy

    proxy = Proxy.parse("http://CORP%5Cme:hunter2@proxy.corp:3128")
    assert proxy.username == "CORP\\me" and proxy.password == "hunter2"
    assert "hunter2" not in repr(proxy) and "hunter2" not in proxy.url


def test_digest_from_session_proxies_and_proxies_kwarg(
    esquid: Any, plain_server: Any, tls_server: Any, tls: Any
) -> None:
    session = requests_ws.Session()
    session.proxies = {"http": esquid.url("digest", DIGEST)}
    with session.ws_connect(plain_server.uri) as ws:
        echo(ws)
    with requests_ws.connect(
        tls_server.uri, proxies={"https": esquid.url("digest", DIGEST)}, verify=tls.ca_path
    ) as ws:
        echo(ws)


# -- NTLM through squid (ntlm_fake_auth: the real three messages) -------------------------


def test_ntlm_domain_account_then_two_legs(
    esquid: Any, plain_server: Any, tls_server: Any, tls: Any
) -> None:
    proxy = esquid.url("ntlm", "CORP%5Cbob:ntlm-pass")
    session = requests_ws.Session()
    with session.ws_connect(plain_server.uri, proxy=proxy) as ws:
        echo(ws)
    # 407 naming NTLM, 407 with the challenge (type 2), 200 on the type 3: one connection.
    first = statuses(esquid, plain_server.port, 1)
    assert first == [["TCP_DENIED/407", "TCP_DENIED/407", "TCP_TUNNEL/200"]]
    with session.ws_connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo(ws)
    # Remembered: the two legs at once.
    assert statuses(esquid, tls_server.port, 1) == [["TCP_DENIED/407", "TCP_TUNNEL/200"]]
    # squid logs the account (ntlm_fake_auth mangles its UTF-16 name: only "C\\b" is left).
    users = [line for line in esquid.access_lines() if "TCP_TUNNEL/200" in line]
    assert users and not any(line.endswith(" -") for line in users)


# -- Negotiate against a real KDC ---------------------------------------------------------


def test_negotiate_with_the_ticket_cache(
    esquid: Any, kdc: Any, plain_server: Any, tls_server: Any, tls: Any, proxy_log: Any
) -> None:
    session = requests_ws.Session()
    proxy = esquid.url("negotiate")  # no credentials: the logged-in user's ticket
    with session.ws_connect(plain_server.uri, proxy=proxy) as ws:
        echo(ws)
    assert statuses(esquid, plain_server.port, 1) == [["TCP_DENIED/407", "TCP_TUNNEL/200"]]
    with session.ws_connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo(ws)
    # Remembered: the Kerberos token in the first request.
    assert statuses(esquid, tls_server.port, 1) == [["TCP_TUNNEL/200"]]
    tunnels = [line for line in esquid.access_lines() if f":{tls_server.port} " in line]
    assert any(f"{kdc.user}@" in line for line in tunnels)
    messages = [r.getMessage() for r in proxy_log.records]
    assert any("offers: Negotiate" in m for m in messages)
    assert any("Negotiate ****" in m for m in messages)
    assert any("407" in m for m in messages) and any(" 200 " in m + " " for m in messages)


def test_negotiate_through_an_https_proxy(esquid: Any, tls_server: Any, tls: Any) -> None:
    with requests_ws.connect(tls_server.uri, proxy=esquid.url("tls"), verify=tls.ca_path) as ws:
        echo(ws)
        assert type(ws.socket).__name__ == "SSLTransport"


def test_negotiate_without_a_ticket_says_so(
    esquid: Any, plain_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path}/no-ticket")
    with pytest.raises(ProxyError) as info:
        requests_ws.connect(plain_server.uri, proxy=esquid.url("negotiate"))
    assert "Negotiate" in str(info.value) and "ticket cache" in str(info.value)
    assert info.value.status == 407


def test_several_schemes_the_strongest_wins(
    esquid: Any, kdc: Any, plain_server: Any, proxy_log: Any
) -> None:
    # Negotiate with a password: Kerberos for the user named in the URL.
    proxy = esquid.url("multi", f"{kdc.user}:{kdc.password}")
    with requests_ws.connect(plain_server.uri, proxy=proxy) as ws:
        echo(ws)
    messages = [r.getMessage() for r in proxy_log.records]
    assert any("Negotiate ****" in m for m in messages)
    assert not any("Basic ****" in m for m in messages)
    assert_no_secret(*messages)


def test_basic_never_goes_to_a_proxy_that_offers_digest(
    esquid: Any, plain_server: Any, proxy_log: Any
) -> None:
    with requests_ws.connect(plain_server.uri, proxy=esquid.url("basic_digest", DIGEST)) as ws:
        echo(ws)
    answers = [r.getMessage() for r in proxy_log.records if "answering" in r.getMessage()]
    assert answers and all("Digest ****" in m for m in answers)


@pytest.mark.parametrize(
    ("role", "credentials"),
    [("tls_digest", DIGEST), ("tls_ntlm", "CORP%5Cbob:ntlm-pass"), ("tls", "")],
    ids=["digest", "ntlm", "negotiate"],
)
def test_each_scheme_through_an_https_proxy_for_ws_and_wss(
    esquid: Any,
    plain_server: Any,
    tls_server: Any,
    tls: Any,
    role: str,
    credentials: str,
    no_leaks: None,
) -> None:
    proxy = esquid.url(role, credentials)
    with requests_ws.connect(plain_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo(ws)
    with requests_ws.connect(tls_server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        echo(ws)
        assert type(ws.socket).__name__ == "SSLTransport"
    assert len(statuses(esquid, tls_server.port, 1)) == 1


# -- a proxy that closes the connection after each 407 ----------------------------------


def test_closing_proxy_reconnects_for_digest_and_negotiate(
    closing_squid: Any, plain_server: Any, tls_server: Any, tls: Any, no_leaks: None
) -> None:
    session = requests_ws.Session()
    with session.ws_connect(plain_server.uri, proxy=closing_squid.url("digest", DIGEST)) as ws:
        echo(ws)
    assert sorted(statuses(closing_squid, plain_server.port, 1)) == [
        ["TCP_DENIED/407"],
        ["TCP_TUNNEL/200"],
    ]
    with session.ws_connect(
        tls_server.uri, proxy=closing_squid.url("negotiate"), verify=tls.ca_path
    ) as ws:
        echo(ws)
    assert sorted(statuses(closing_squid, tls_server.port, 1)) == [
        ["TCP_DENIED/407"],
        ["TCP_TUNNEL/200"],
    ]


def test_closing_proxy_keeps_the_connection_for_ntlm(closing_squid: Any, plain_server: Any) -> None:
    """squid closes after a 407 but pins the connection once NTLM has begun:
    the first 407 costs a connection, the two legs share the next."""
    with requests_ws.connect(plain_server.uri, proxy=closing_squid.url("ntlm", "bob:ntlm-pass")):
        pass
    assert sorted(statuses(closing_squid, plain_server.port, 1)) == [
        ["TCP_DENIED/407"],
        ["TCP_DENIED/407", "TCP_TUNNEL/200"],
    ]


def test_a_rejected_scheme_falls_back_to_the_next_on_a_new_connection(
    esquid: Any, plain_server: Any, proxy_log: Any
) -> None:
    # digestuser has no Kerberos principal: Negotiate fails, NTLM (which
    # ntlm_fake_auth takes from anyone) is next, on a connection of its own.
    with requests_ws.connect(plain_server.uri, proxy=esquid.url("multi", DIGEST)) as ws:
        echo(ws)
    answers = [r.getMessage() for r in proxy_log.records if "answering" in r.getMessage()]
    assert "Negotiate ****" in answers[0] and "NTLM ****" in answers[-1]
    connections = statuses(esquid, plain_server.port, 1)
    assert connections == [
        ["TCP_DENIED/407", "TCP_DENIED/407"],
        ["TCP_DENIED/407", "TCP_TUNNEL/200"],
    ]


# -- the scripted proxy: SHA-256, stale nonces, the hook -----------------------------------


def test_digest_sha256_preferred_and_stale_nonce(scripted: Any, plain_server: Any) -> None:
    proxy = scripted(stale_first=True)
    session = requests_ws.Session()
    url = f"http://shauser:sha-pass@127.0.0.1:{proxy.port}"
    with session.ws_connect(plain_server.uri, proxy=url) as ws:
        echo(ws)
    # No credentials first; SHA-256 (offered with MD5); stale=true: the new nonce.
    (first,) = proxy.connections
    assert first[0] is None and len(first) == 3
    assert all("algorithm=SHA-256" in (value or "") for value in first[1:])
    assert not proxy.errors
    with session.ws_connect(plain_server.uri, proxy=url) as ws:
        echo(ws)
    assert len(proxy.connections[1]) == 1  # the last nonce, the next count
    assert "nc=00000002" in (proxy.connections[1][0] or "")


@pytest.mark.parametrize("announced", [True, False], ids=["connection-close", "silent"])
def test_scripted_proxy_closing_after_407(
    no_leaks: None, scripted: Any, plain_server: Any, announced: bool
) -> None:
    proxy = scripted(close_after_407=True, announce_close=announced)
    url = f"http://shauser:sha-pass@127.0.0.1:{proxy.port}"
    with requests_ws.connect(plain_server.uri, proxy=url) as ws:
        echo(ws)
    assert [len(requests) for requests in proxy.connections] == [1, 1]


def test_proxy_auth_hook_for_another_scheme(scripted: Any, plain_server: Any) -> None:
    class TokenAuth(requests_ws.ProxyAuth):
        scheme = "Token"

        def __init__(self) -> None:
            self.seen: list[str] = []

        def respond(self, challenge: requests_ws.Challenge, proxy_url: str, target: str) -> str:
            self.seen.append(challenge.params.get("realm", ""))
            return "Token secret-token"

    proxy = scripted(accept="token")
    hook = TokenAuth()
    session = requests_ws.Session()
    with session.ws_connect(plain_server.uri, proxy=proxy.url, proxy_auth=hook) as ws:
        echo(ws)
    assert hook.seen == ["scripted"]
    assert proxy.connections[0] == [None, "Token secret-token"]

    class Remembering(TokenAuth):
        def first(self, proxy_url: str, target: str, remembered: bool) -> str | None:
            return "Token secret-token" if remembered else None

    # The session remembers that this proxy asked for Token: first() answers at once.
    with session.ws_connect(plain_server.uri, proxy=proxy.url, proxy_auth=Remembering()) as ws:
        echo(ws)
    assert proxy.connections[1] == ["Token secret-token"]


@pytest.fixture
def ntlm_accounts(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The scripted proxy's NTLM accounts (pyspnego's acceptor reads NTLM_USER_FILE)."""
    accounts = tmp_path / "ntlm-users"
    accounts.write_text("CORP:bob:ntlm-pass\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(accounts))


def test_ntlm_checked_for_real_and_rejected(
    scripted: Any, plain_server: Any, ntlm_accounts: None
) -> None:
    proxy = scripted(accept="ntlm")
    good = f"http://CORP%5Cbob:ntlm-pass@127.0.0.1:{proxy.port}"
    with requests_ws.connect(plain_server.uri, proxy=good) as ws:
        echo(ws)
    assert [len(c) for c in proxy.connections] == [3] and not proxy.errors
    with pytest.raises(InvalidProxyStatus) as info:
        requests_ws.connect(
            plain_server.uri, proxy=f"http://CORP%5Cbob:wrong-pass@127.0.0.1:{proxy.port}"
        )
    assert info.value.status == 407 and "tried: NTLM" in str(info.value)
    assert "offered: NTLM" in str(info.value) and "wrong-pass" not in str(info.value)
    # Remembered, NTLM went out in its two legs at once; rejected, it is not retried.
    assert [len(c) for c in proxy.connections] == [3, 2] and len(proxy.errors) == 1


def test_negotiate_falls_back_to_ntlm_inside_spnego(
    scripted: Any, plain_server: Any, ntlm_accounts: None, proxy_log: Any
) -> None:
    # CORP\\bob has no Kerberos principal: pyspnego's SPNEGO carries NTLM.
    proxy = scripted(accept="negotiate")
    url = f"http://CORP%5Cbob:ntlm-pass@127.0.0.1:{proxy.port}"
    with requests_ws.connect(plain_server.uri, proxy=url) as ws:
        echo(ws)
    assert proxy.negotiated == ["ntlm"] and not proxy.errors
    assert len(proxy.connections) == 1  # the legs on one connection
    answers = [r.getMessage() for r in proxy_log.records if "answering" in r.getMessage()]
    assert answers and all("Negotiate ****" in m for m in answers)


def test_proxy_closing_in_the_middle_of_ntlm(
    scripted: Any, plain_server: Any, ntlm_accounts: None
) -> None:
    proxy = scripted(accept="ntlm", close_after_ntlm_challenge=True)
    url = f"http://CORP%5Cbob:ntlm-pass@127.0.0.1:{proxy.port}"
    with pytest.raises(ProxyError, match="NTLM authentication, which must complete on one"):
        requests_ws.connect(plain_server.uri, proxy=url)


def test_bad_proxy_auth_is_refused_before_any_io() -> None:
    with pytest.raises(TypeError, match="proxy_auth"):
        requests_ws.connect("ws://192.0.2.1/", proxy_auth="Bearer x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="proxy_auth"):
        requests_ws.connect("ws://192.0.2.1/", proxy_auth=requests_ws.ProxyAuth())


def test_rounds_are_bounded(scripted: Any, plain_server: Any) -> None:
    class Stubborn(requests_ws.ProxyAuth):
        scheme = "Token"

        def respond(self, challenge: requests_ws.Challenge, proxy_url: str, target: str) -> str:
            return "Token wrong"

    proxy = scripted(accept="token")
    with pytest.raises(InvalidProxyStatus, match="rounds"):
        requests_ws.connect(plain_server.uri, proxy=proxy.url, proxy_auth=Stubborn())
    assert len(proxy.connections[0]) <= 8


# -- diagnosis: python -m requests_ws --verbose -------------------------------------------


def test_verbose_shows_the_connect_exchange_masked(esquid: Any, plain_server: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proxy = esquid.url("basic_digest", "digestuser:wrong-pass")
    command = [sys.executable, "-m", "requests_ws", "--verbose", "--proxy", proxy]
    result = subprocess.run(
        [*command, plain_server.uri, "-x", "hello"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode != 0
    err = result.stderr
    assert "HTTP/1.1 407 Proxy Authentication Required" in err
    assert "offers: Basic, Digest (MD5)" in err, err
    assert "answering with Proxy-Authorization: Digest ****" in err
    assert "tried: Digest" in err
    assert "wrong-pass" not in err and "Basic ****" not in err


# -- the environment's variables -------------------------------------------------------


def run_client(uri: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
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
        if not name.lower().endswith("_proxy") and name != "REQUESTS_CA_BUNDLE"
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=60
    )


def test_schemes_from_the_environment(
    esquid: Any, plain_server: Any, tls_server: Any, tls: Any
) -> None:
    result = run_client(plain_server.uri, {"HTTP_PROXY": esquid.url("digest", DIGEST)})
    assert result.returncode == 0, result.stderr
    env = {"HTTPS_PROXY": esquid.url("ntlm", "bob:ntlm-pass"), "REQUESTS_CA_BUNDLE": tls.ca_path}
    result = run_client(tls_server.uri, env)
    assert result.returncode == 0, result.stderr
    result = run_client(plain_server.uri, {"http_proxy": esquid.url("negotiate")})
    assert result.returncode == 0, result.stderr


def test_without_pyspnego_the_error_names_the_extra(
    esquid: Any, plain_server: Any, tmp_path: Any
) -> None:
    # A process where pyspnego cannot be imported (as without the extra).
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['spnego'] = None\n")
    env = {"HTTP_PROXY": esquid.url("ntlm", "bob:ntlm-pass"), "PYTHONPATH": str(tmp_path)}
    result = run_client(plain_server.uri, env)
    assert result.returncode != 0
    assert "requests-ws[negotiate]" in result.stderr
    assert "ntlm-pass" not in result.stderr


# -- PAC files through pypac -----------------------------------------------------------


def pac_session(script: str, **kwargs: Any) -> Any:
    from pypac import PACSession
    from pypac.parser import PACFile

    return PACSession(pac=PACFile(script), **kwargs)


def test_pac_chooses_a_proxy_and_direct(
    squid: Any, esquid: Any, plain_server: Any, ws_server: Any
) -> None:
    from .test_proxies import count_tunnels

    direct = ws_server()
    script = f"""
    function FindProxyForURL(url, host) {{
        if (url.indexOf(":{direct.port}/") >= 0) return "DIRECT";
        return "PROXY 127.0.0.1:{squid.plain}";
    }}
    """
    session = pac_session(script)
    before = count_tunnels(squid, plain_server.port)
    with requests_ws.ws_connect(session, plain_server.uri) as ws:
        echo(ws)
    assert count_tunnels(squid, plain_server.port, before + 1) == before + 1
    before_direct = count_tunnels(squid, direct.port)
    with requests_ws.ws_connect(session, direct.uri) as ws:
        echo(ws)
    assert count_tunnels(squid, direct.port) == before_direct


def test_pac_fails_over_from_a_dead_proxy(
    squid: Any, plain_server: Any, tls_server: Any, tls: Any, no_leaks: None
) -> None:
    from .peers.proxies import free_port
    from .test_proxies import count_tunnels

    dead = free_port()
    script = f"""
    function FindProxyForURL(url, host) {{
        return "PROXY 127.0.0.1:{dead}; PROXY 127.0.0.1:{squid.plain}; DIRECT";
    }}
    """
    session = pac_session(script)
    before = count_tunnels(squid, tls_server.port)
    with requests_ws.ws_connect(session, tls_server.uri, verify=tls.ca_path) as ws:
        echo(ws)
    assert count_tunnels(squid, tls_server.port, before + 1) == before + 1
    # pypac was told: the dead proxy is banned for later lookups.
    assert f"http://127.0.0.1:{dead}" in session._proxy_resolver._offline_proxies


def test_pac_https_and_socks_entries_and_credentials(
    esquid: Any, dante: Any, plain_server: Any, tls: Any
) -> None:
    from requests.auth import HTTPProxyAuth

    from .peers.proxies import free_port

    script = f"""
    function FindProxyForURL(url, host) {{
        return "HTTPS localhost:{esquid.ports["tls"]}";
    }}
    """
    session = pac_session(script, proxy_auth=HTTPProxyAuth("digestuser", "digest-pass"))
    with requests_ws.ws_connect(session, plain_server.uri, proxy_ssl=tls.client_context) as ws:
        echo(ws)
    script = f"""
    function FindProxyForURL(url, host) {{
        return "SOCKS5 127.0.0.1:{free_port()}; SOCKS5 127.0.0.1:{dante.port}";
    }}
    """
    with requests_ws.ws_connect(pac_session(script), plain_server.uri) as ws:
        echo(ws)


def test_pac_file_served_over_http(squid: Any, plain_server: Any, tmp_path: Any) -> None:
    import http.server
    import threading

    from pypac import get_pac

    from .test_proxies import count_tunnels

    body = f'function FindProxyForURL(url, host) {{ return "PROXY 127.0.0.1:{squid.plain}"; }}'

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ns-proxy-autoconfig")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        from pypac import PACSession

        pac = get_pac(url=f"http://127.0.0.1:{server.server_address[1]}/proxy.pac")
        assert pac is not None
        before = count_tunnels(squid, plain_server.port)
        with requests_ws.ws_connect(PACSession(pac=pac), plain_server.uri) as ws:
            echo(ws)
        assert count_tunnels(squid, plain_server.port, before + 1) == before + 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- a TLS-intercepting proxy ------------------------------------------------------------


def test_intercepting_proxy_with_its_ca(mitm: Any, plain_server: Any, tls_server: Any) -> None:
    with requests_ws.connect(tls_server.uri, proxy=mitm.url, verify=mitm.ca_path) as ws:
        echo(ws)
    with requests_ws.connect(plain_server.uri, proxy=mitm.url) as ws:
        echo(ws)
    result = run_client(
        tls_server.uri, {"HTTPS_PROXY": mitm.url, "REQUESTS_CA_BUNDLE": mitm.ca_path}
    )
    assert result.returncode == 0, result.stderr


def test_intercepting_proxy_without_its_ca_names_the_issuer(
    mitm: Any, tls_server: Any, tls: Any
) -> None:
    with pytest.raises(requests.exceptions.SSLError) as info:
        requests_ws.connect(tls_server.uri, proxy=mitm.url, verify=tls.ca_path)
    text = str(info.value)
    assert "mitmproxy" in text  # the issuer of the certificate it presented
    assert "intercepting TLS" in text and "verify=" in text and "REQUESTS_CA_BUNDLE" in text


# -- the reference client --------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "options"),
    [
        ("digest", ["--proxy-digest", "-U", DIGEST]),
        ("ntlm", ["--proxy-ntlm", "-U", "CORP\\bob:ntlm-pass"]),
        ("negotiate", ["--proxy-negotiate", "-U", ":"]),
        ("multi", ["--proxy-anyauth", "-U", DIGEST]),
    ],
)
def test_curl_passes_the_same_squid(
    esquid: Any, plain_server: Any, role: str, options: list[str]
) -> None:
    curl = shutil.which("curl")
    if curl is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("curl is not installed")
        pytest.skip("curl is not installed")
    url = plain_server.uri.replace("ws://", "http://")
    command = [curl, "-sS", "-p", "-o", os.devnull, "-w", "%{http_code}", "-x", esquid.url(role)]
    result = subprocess.run(
        [*command, *options, url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Through the tunnel, websockets answers a plain GET with 426 Upgrade Required.
    assert result.stdout == "426", result.stderr
