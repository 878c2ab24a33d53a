"""``requests_ws.session_settings``: requests' own ``prepare_request`` and
``merge_environment_settings``, for less CPU, with the same answers.

Every answer is compared with the one the session's own method gives, right
then, in the same environment; the environment changes between calls (proxy
variables set, changed, removed, upper and lower case, ``NO_PROXY``, CA
bundles), as applications and tests change it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from requests_ws.session_settings import environment_settings, prepare_request

URLS = [
    "http://127.0.0.1:8765/",
    "https://example.com/feed?x=1",
    "http://internal.corp.example:8080/",
    "https://api.internal.corp.example/",
]

ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"HTTP_PROXY": "http://proxy.example:3128"},
    {"HTTP_PROXY": "http://other.example:3128", "HTTPS_PROXY": "http://secure.example:8080"},
    {"http_proxy": "http://lower.example:1", "HTTP_PROXY": "http://upper.example:2"},
    {"HTTPS_PROXY": "http://secure.example:8080", "NO_PROXY": "example.com,.corp.example"},
    {"ALL_PROXY": "socks5h://socks.example:1080", "no_proxy": "127.0.0.1"},
    {"HTTP_PROXY": "http://proxy.example:3128", "NO_PROXY": "internal.corp.example:8080"},
    {"REQUESTS_CA_BUNDLE": "/tmp/bundle.pem", "HTTPS_PROXY": "http://secure.example:8080"},
    {"CURL_CA_BUNDLE": "/tmp/curl.pem"},
    {"HTTP_PROXY": "http://proxy.example:3128"},  # back to an earlier environment
    {},
]

_PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "REQUEST_METHOD",
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    yield monkeypatch


def _set_environment(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def _expected(session: requests.Session, url: str, proxies: Any, verify: Any, cert: Any) -> Any:
    return session.merge_environment_settings(url, dict(proxies or {}), True, verify, cert)


@pytest.mark.parametrize(
    ("proxies", "verify", "cert"),
    [
        (None, None, None),
        ({"https": "http://explicit.example:1"}, False, None),
        ({"no_proxy": "example.com"}, "/tmp/ca.pem", ("/tmp/c.pem", "/tmp/k.pem")),
    ],
)
def test_environment_settings_follow_every_change(
    clean_environment: pytest.MonkeyPatch, proxies: Any, verify: Any, cert: Any
) -> None:
    session = requests.Session()
    for variables in ENVIRONMENTS:
        _set_environment(clean_environment, variables)
        for url in URLS:
            for _ in range(2):  # the second answer is the remembered one
                got = environment_settings(session, url, proxies, verify, cert)
                assert got == _expected(session, url, proxies, verify, cert), (variables, url)


def test_environment_settings_follow_the_session(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://secure.example:8080")
    session = requests.Session()
    url = URLS[1]
    assert environment_settings(session, url, None, None, None)["proxies"]
    session.trust_env = False
    assert environment_settings(session, url, None, None, None) == _expected(
        session, url, None, None, None
    )
    session.trust_env = True
    session.proxies = {"https": "http://session.example:9"}
    session.verify = "/tmp/session-ca.pem"
    assert environment_settings(session, url, None, None, None) == _expected(
        session, url, None, None, None
    )


def test_answers_are_copies(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("HTTP_PROXY", "http://proxy.example:3128")
    session = requests.Session()
    mine = {"https": "http://explicit.example:1"}
    first = environment_settings(session, URLS[0], mine, None, None)
    first["proxies"]["http"] = "http://changed.example:1"
    first["verify"] = "changed"
    assert mine == {"https": "http://explicit.example:1"}  # the caller's dict is untouched
    again = environment_settings(session, URLS[0], mine, None, None)
    assert again == _expected(session, URLS[0], mine, None, None)


def test_a_session_that_overrides_the_merge_is_asked_every_time(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    class Counting(requests.Session):
        def merge_environment_settings(self, url: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(str(url))
            return super().merge_environment_settings(url, *args, **kwargs)

    session = Counting()
    for _ in range(3):
        environment_settings(session, URLS[0], None, None, None)
    assert calls == [URLS[0]] * 3


# -- prepare_request ---------------------------------------------------------------


def _snapshot(prepared: requests.PreparedRequest) -> dict[str, Any]:
    jar = prepared._cookies
    return {
        "method": prepared.method,
        "url": prepared.url,
        "headers": list(prepared.headers.items()),
        "body": prepared.body,
        "hooks": {event: list(hooks) for event, hooks in prepared.hooks.items()},
        "cookies": sorted((c.name, c.value, c.domain) for c in jar) if jar is not None else None,
    }


def _sessions(tmp_path: Any) -> Iterator[requests.Session]:
    yield requests.Session()
    session = requests.Session()
    session.headers["X-Team"] = "platform"
    session.headers["Accept"] = None  # type: ignore[assignment]  # removed, as requests allows
    session.params = {"token": "s", "drop": "x"}
    session.cookies.set("sid", "1", domain="example.com")
    session.hooks["response"].append(lambda response, **kwargs: response)
    yield session
    session = requests.Session()
    session.auth = ("alice", "s3cret")
    yield session


def _requests() -> Iterator[requests.Request]:
    yield requests.Request("GET", "http://example.com/chat", headers={"Upgrade": "websocket"})
    yield requests.Request(
        "GET",
        "https://bob:pw@example.com/a b?q=1",
        headers={"X-Team": None, "User-Agent": "mine"},
        params={"drop": None, "page": "2"},
        cookies={"extra": "y"},
    )
    yield requests.Request("get", "http://example.com/", params="raw=1", auth=("carol", "pw"))
    jar = requests.cookies.RequestsCookieJar()
    jar.set("jar", "z", domain="example.com")
    yield requests.Request("GET", "http://example.com/", cookies=jar, hooks={"response": []})


def test_prepare_request_is_requests(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.com login dave password from-netrc\n")
    for with_netrc in (False, True):
        if with_netrc:
            monkeypatch.setenv("NETRC", str(netrc))
        else:
            monkeypatch.setenv("NETRC", str(tmp_path / "none"))
        for session in _sessions(tmp_path):
            for request in _requests():
                ours = _snapshot(prepare_request(session, request))
                theirs = _snapshot(session.prepare_request(request))
                assert ours == theirs, (with_netrc, request.url)


def test_a_session_that_overrides_prepare_request_is_asked() -> None:
    class Signing(requests.Session):
        def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
            prepared = super().prepare_request(request)
            prepared.headers["X-Signature"] = "signed"
            return prepared

    prepared = prepare_request(Signing(), requests.Request("GET", "http://example.com/"))
    assert prepared.headers["X-Signature"] == "signed"
