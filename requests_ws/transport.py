"""The only module that talks to requests and urllib3: send the upgrade
request through the session and hand back the upgraded stream.

Two routes, one exchange:

* **The session's own adapter.** When the session has a custom adapter
  mounted for the equivalent ``http(s)://`` URL (an ``HTTPAdapter`` subclass
  with its own SSL context, source address, retries...), the request goes
  through it unchanged, and urllib3 opens the connection.
* **Our route.** Otherwise :mod:`.routes` opens the stream itself (direct
  TCP, ``sock=``, AF_UNIX, HTTP(S) proxies always tunnelled with CONNECT,
  SOCKS, TLS and TLS inside TLS), and a one-shot requests adapter speaks
  HTTP over that stream, so proxies, ``open_timeout`` and proxy errors are
  exact.

Either way the request is a :class:`requests.PreparedRequest` built by the
session (headers, cookies, auth, netrc, URL userinfo), the response passes
the session's hooks (``HTTPDigestAuth`` retries through them), cookies land
in ``session.cookies``, redirects follow requests' rules, and on 101 the
socket is taken out of urllib3 together with the bytes http.client already
buffered past the response, and detached from the pool.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import socket
import ssl as ssl_module
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Protocol

import requests
import requests.adapters
import requests.hooks
import requests.utils
import urllib3
from requests.cookies import extract_cookies_to_jar, merge_cookies
from urllib3.util import SKIP_HEADER

from .exceptions import InvalidHandshake, InvalidStatus, OpenTimeout, ProxyError
from .proxy_auth import ProxyAuth
from .routes import Proxy, Route, open_stream, select_route

__all__ = ["SocketLike", "Upgraded", "open_upgraded", "http_url"]

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_MAX_ERROR_BODY = 65536


class SocketLike(Protocol):
    """What the connection needs from the upgraded stream: a socket.socket,
    ssl.SSLSocket, socks.socksocket or urllib3's SSLTransport."""

    def recv(self, bufsize: int) -> bytes: ...
    def recv_into(self, buffer: Any, nbytes: int = ...) -> int: ...
    def send(self, data: Any) -> int: ...
    def sendall(self, data: Any) -> Any: ...
    def settimeout(self, value: float | None) -> None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


@dataclasses.dataclass
class Upgraded:
    """The result of a successful upgrade (status 101)."""

    sock: SocketLike
    """The stream to speak WebSocket over; the caller owns it now."""
    raw_socket: socket.socket
    """The OS-level socket under ``sock`` (for poll, shutdown, addresses)."""
    leftover: bytes
    """Bytes already read past the 101 response: feed them first."""
    request: requests.PreparedRequest
    """The request that got the 101 (after redirects and auth retries)."""
    response: requests.Response
    """The 101 response; its stream is detached from urllib3."""


def http_url(uri: str) -> str:
    """The ``http(s)://`` URL equivalent to a ``ws(s)://`` URI."""
    if uri.startswith("wss:"):
        return "https:" + uri[4:]
    if uri.startswith("ws:"):
        return "http:" + uri[3:]
    return uri


class _Deadline:
    def __init__(self, timeout: float | None, uri: str) -> None:
        self.timeout = timeout
        self.uri = uri
        self.end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        if self.end is None:
            return None
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> OpenTimeout:
        return OpenTimeout(
            f"timed out after {self.timeout} s opening the WebSocket connection to "
            f"{self.uri} (open_timeout)"
        )


class _StreamAdapter(requests.adapters.HTTPAdapter):
    """A one-shot adapter that speaks HTTP over streams opened by :mod:`.routes`.

    Each ``send`` opens a fresh stream (an auth retry gets a new connection).
    """

    def __init__(self, route: Route, deadline: _Deadline) -> None:
        super().__init__(max_retries=0)
        self.route = route
        self.deadline = deadline
        self.pools: list[_StreamPool] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        stream = open_stream(self.route, self.deadline.remaining())
        # An auth hook's retry comes through here too: it gets the time left.
        kwargs["timeout"] = self.deadline.remaining()
        pool = _StreamPool(self.route, stream)
        self.pools.append(pool)
        try:
            self._pending_pool = pool
            return super().send(request, **kwargs)
        except BaseException:
            pool.close_stream()
            raise

    def close(self) -> None:
        """Close every stream this adapter opened, except one taken over."""
        for pool in self.pools:
            pool.close_stream()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """No pool manager: every request goes over a stream from open_stream."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        return self._pending_pool

    def cert_verify(self, *args: Any, **kwargs: Any) -> None:
        """TLS was set up by the route, with the session's verify and cert."""

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        return request.path_url


class _DeadlineSender:
    """A mounted adapter, as seen by the response's hooks.

    It stands in as ``response.connection`` so that an auth hook's retry
    (``HTTPDigestAuth`` calls ``r.connection.send``) gets the time left
    before the deadline, and turns requests' proxy errors into
    :class:`ProxyError` with the proxy's status and reason.
    """

    def __init__(
        self, adapter: requests.adapters.BaseAdapter, deadline: _Deadline, proxy_url: str | None
    ) -> None:
        self.adapter = adapter
        self.deadline = deadline
        self.proxy_url = proxy_url

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self.deadline.remaining()
        try:
            response: requests.Response = self.adapter.send(request, **kwargs)
        except requests.exceptions.ProxyError as exc:
            if isinstance(exc, ProxyError):
                raise
            raise _proxy_error(self.proxy_url, str(request.url), exc) from exc
        return response

    def close(self) -> None:
        self.adapter.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.adapter, name)


_TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})(?: ([^'\"\)]*))?")


def _proxy_error(
    proxy_url: str | None, url: str, exc: requests.exceptions.ProxyError
) -> ProxyError:
    """Our ProxyError for the proxy error a mounted adapter raised."""
    proxy = Proxy.parse(proxy_url).url if proxy_url else "the proxy"
    target = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
    match = _TUNNEL_FAILED.search(str(exc))
    if match is None:
        return ProxyError(f"proxy {proxy} failed for {target}: {exc}", proxy=proxy)
    status = int(match.group(1))
    reason = (match.group(2) or "").strip()
    message = f"proxy {proxy} refused CONNECT to {target}: {status} {reason}".rstrip()
    if status == 407:
        message += " (the proxy requires authentication, or rejected the credentials)"
    return ProxyError(message, proxy=proxy, status=status, reason=reason)


def _proxies_for(session_proxies: Mapping[str, str], proxy: str | bool | None) -> dict[str, str]:
    """The proxies mapping to hand to a mounted adapter for ``proxy=``."""
    if proxy is True:
        return dict(session_proxies)
    if isinstance(proxy, str):
        return {"all": proxy}
    return {}


def _mounted_adapter_serves(
    adapter: requests.adapters.BaseAdapter,
    url: str,
    proxies: Mapping[str, str],
    route_options: Mapping[str, Any],
) -> bool:
    """Whether the session's mounted adapter sends the request, or our route.

    A custom adapter (any subclass of HTTPAdapter, or any other adapter)
    serves the request unless the caller asked for what only our route does
    (``sock=``, ``unix_path``, ``ssl=``, ``server_hostname=``, ``proxy_ssl=``,
    ``proxy_server_hostname=``), or the URL is ``http://`` behind an HTTP(S)
    proxy: urllib3 forwards such requests instead of tunnelling, and proxies
    strip ``Upgrade``, so our route, which always tunnels, takes them.
    """
    if type(adapter) is requests.adapters.HTTPAdapter:
        return False
    if any(
        route_options[name] is not None
        for name in (
            "sock",
            "unix_path",
            "ssl_context",
            "server_hostname",
            "proxy_ssl",
            "proxy_server_hostname",
        )
    ):
        return False
    if url.startswith("http:"):
        proxy_url = requests.utils.select_proxy(url, dict(proxies)) or ""
        if "://" not in proxy_url and proxy_url:
            proxy_url = "http://" + proxy_url
        if proxy_url.lower().startswith(("http:", "https:")):
            return False
    return True


class _StreamConnection(urllib3.connection.HTTPConnection):
    """An HTTP connection over a stream that is already open."""

    stream: Any = None

    def connect(self) -> None:
        self.sock = self.stream


class _StreamPool(urllib3.HTTPConnectionPool):
    """A connection pool holding exactly one pre-opened stream."""

    def __init__(self, route: Route, stream: Any) -> None:
        super().__init__(route.host, route.port, maxsize=1, block=False)
        self.stream = stream

    def _new_conn(self) -> urllib3.connection.HTTPConnection:
        connection = _StreamConnection(
            host=self.host, port=self.port, timeout=self.timeout.connect_timeout
        )
        connection.stream = self.stream
        if self.port == 443:
            # Host: header without ":443" for wss:// on the default port.
            connection.default_port = 443  # type: ignore[misc]
        return connection

    def close_stream(self) -> None:
        """Close the stream, unless the WebSocket connection took it over."""
        stream, self.stream = self.stream, None
        if stream is None:
            return
        self.close()
        try:
            stream.close()
        except OSError:
            pass


def _merged_headers(
    headers: Mapping[str, str | None], user_headers: Mapping[str, str | None] | None
) -> dict[str, str | None]:
    merged: dict[str, str | None] = dict(user_headers or {})
    lowered = {name.lower(): name for name in merged}
    for name, value in headers.items():
        old = lowered.get(name.lower())
        if old is not None:
            del merged[old]
        if value is None and name.lower() == "user-agent":
            # None removes the session's User-Agent; SKIP_HEADER also stops
            # urllib3 from adding its own.
            value = SKIP_HEADER
        merged[name] = value
    return merged


def open_upgraded(
    session: requests.Session,
    uri: str,
    *,
    headers: Mapping[str, str | None],
    requests_kwargs: Mapping[str, Any],
    sock: socket.socket | None = None,
    unix_path: str | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    proxy: str | bool | None = True,
    proxy_ssl: ssl_module.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    proxy_auth: ProxyAuth | None = None,
    open_timeout: float | None = 10,
) -> Upgraded:
    """Send the upgrade request through ``session``; return the upgraded stream.

    ``headers`` are the WebSocket headers; they win over the session's and
    ``requests_kwargs["headers"]``, and a ``None`` value removes a session
    header (as in requests). ``requests_kwargs`` may hold ``params``,
    ``headers``, ``cookies``, ``auth``, ``proxies``, ``verify``, ``cert`` and
    ``allow_redirects``.

    Raises requests' ``ConnectionError``/``SSLError`` for network and TLS
    failures, :class:`ProxyError` when a proxy refuses, :class:`InvalidStatus`
    for a final answer other than 101, requests' ``TooManyRedirects``,
    :class:`InvalidHandshake` for a redirect from ``wss://`` to ``ws://``, and
    :class:`OpenTimeout` when ``open_timeout`` expires.
    """
    deadline = _Deadline(open_timeout, uri)
    kwargs = dict(requests_kwargs)
    allow_redirects = kwargs.pop("allow_redirects", True)
    request = requests.Request(
        "GET",
        http_url(uri),
        headers=_merged_headers(headers, kwargs.pop("headers", None)),
        params=kwargs.pop("params", None),
        cookies=kwargs.pop("cookies", None),
        auth=kwargs.pop("auth", None),
    )
    prepared = session.prepare_request(request)
    explicit_proxies = kwargs.pop("proxies", None)
    verify = kwargs.pop("verify", None)
    cert = kwargs.pop("cert", None)
    if kwargs:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(kwargs))}")

    history: list[requests.Response] = []
    try:
        while True:
            url = str(prepared.url)
            settings = session.merge_environment_settings(
                url, explicit_proxies or {}, True, verify, cert
            )
            response = _send_once(
                session,
                prepared,
                settings,
                deadline,
                sock=sock,
                unix_path=unix_path,
                ssl_context=ssl,
                server_hostname=server_hostname,
                proxy=proxy,
                proxy_ssl=proxy_ssl,
                proxy_server_hostname=proxy_server_hostname,
                proxy_auth=proxy_auth,
                use_pac=explicit_proxies is None,
            )
            taken = False
            try:
                if response.status_code == 101:
                    # Redirects first, then any auth retries (HTTPDigestAuth's 401).
                    response.history = history + response.history
                    upgraded = _take_over(response)
                    taken = True
                    return upgraded
                if not (allow_redirects and response.status_code in _REDIRECT_CODES):
                    _read_error_body(response)
                    raise InvalidStatus(response)
                history.append(response)
                if len(history) > session.max_redirects:
                    _read_error_body(response)
                    raise requests.exceptions.TooManyRedirects(
                        f"exceeded {session.max_redirects} redirects while opening {uri}",
                        response=response,
                    )
                prepared = _follow_redirect(session, response, prepared)
            finally:
                if not taken:
                    # Also releases http.client's reference to the socket.
                    response.close()
                if isinstance(response.connection, _StreamAdapter):
                    response.connection.close()
            if sock is not None or unix_path is not None:
                raise InvalidHandshake(
                    f"cannot follow the redirect to {prepared.url}: the connection was "
                    "opened on a given socket (sock= or unix_connect)"
                )
    except requests.exceptions.Timeout as exc:
        raise deadline.expired() from exc
    except TimeoutError as exc:
        if isinstance(exc, OpenTimeout):
            raise
        raise deadline.expired() from exc


def _send_once(
    session: requests.Session,
    prepared: requests.PreparedRequest,
    settings: Mapping[str, Any],
    deadline: _Deadline,
    **route_options: Any,
) -> requests.Response:
    """Send one request and run the session's hooks and cookie extraction."""
    url = str(prepared.url)
    proxies = _proxies_for(settings["proxies"], route_options["proxy"])
    adapter = session.get_adapter(url)
    sender: _StreamAdapter | _DeadlineSender
    if _mounted_adapter_serves(adapter, url, proxies, route_options):
        sender = _DeadlineSender(adapter, deadline, requests.utils.select_proxy(url, proxies))
    else:
        route = select_route(
            url,
            session=session,
            proxies=settings["proxies"],
            verify=settings["verify"],
            cert=settings["cert"],
            **route_options,
        )
        sender = _StreamAdapter(route, deadline)
    send_kwargs: dict[str, Any] = {
        "stream": True,
        "timeout": deadline.remaining(),
        "verify": settings["verify"],
        "cert": settings["cert"],
        "proxies": proxies,
    }
    started = time.monotonic()
    first = sender.send(prepared, **send_kwargs)
    first.elapsed = datetime.timedelta(seconds=time.monotonic() - started)
    if isinstance(sender, _DeadlineSender):
        # An auth hook's retry (``r.connection.send``) gets the time left.
        first.connection = sender  # type: ignore[assignment]
    try:
        response = requests.hooks.dispatch_hook(  # type: ignore[no-untyped-call]
            "response", prepared.hooks, first, **send_kwargs
        )
    except BaseException:
        # A hook failed (an auth retry timed out...): close what was opened.
        first.close()
        if isinstance(sender, _StreamAdapter):
            sender.close()
        raise
    if response.history:
        # An auth hook (HTTPDigestAuth) retried: keep the cookies of each answer.
        for earlier in response.history:
            extract_cookies_to_jar(session.cookies, earlier.request, earlier.raw)  # type: ignore[no-untyped-call]
    extract_cookies_to_jar(session.cookies, response.request, response.raw)  # type: ignore[no-untyped-call]
    result: requests.Response = response
    return result


def _follow_redirect(
    session: requests.Session,
    response: requests.Response,
    prepared: requests.PreparedRequest,
) -> requests.PreparedRequest:
    """The next request of a redirect, with requests' rules (auth dropped
    across hosts, cookies, method); refuse a downgrade from TLS."""
    location = response.headers.get("Location")
    if not location:
        _read_error_body(response)
        raise InvalidStatus(response)
    target = urllib.parse.urljoin(str(prepared.url), http_url(location))
    old_scheme = urllib.parse.urlsplit(str(prepared.url)).scheme
    new_scheme = urllib.parse.urlsplit(target).scheme
    if new_scheme not in ("http", "https"):
        raise InvalidHandshake(f"cannot follow a redirect to {location}: not a WebSocket URI")
    if old_scheme == "https" and new_scheme == "http":
        raise InvalidHandshake(
            f"refused a redirect from {_ws(str(prepared.url))} to {_ws(target)}: "
            "it would drop TLS (wss:// to ws://)"
        )
    _read_error_body(response)
    redirected = prepared.copy()
    redirected.url = target
    redirected.headers.pop("Cookie", None)
    # As requests does: the request's own cookies, the answer's, the session's.
    jar = redirected._cookies  # type: ignore[attr-defined]
    extract_cookies_to_jar(jar, prepared, response.raw)  # type: ignore[no-untyped-call]
    merge_cookies(jar, session.cookies)  # type: ignore[no-untyped-call]
    redirected.prepare_cookies(jar)
    session.rebuild_auth(redirected, response)  # type: ignore[no-untyped-call]
    response.close()
    return redirected


def _ws(url: str) -> str:
    if url.startswith("https:"):
        return "wss:" + url[6:]
    if url.startswith("http:"):
        return "ws:" + url[5:]
    return url


def _read_error_body(response: requests.Response) -> None:
    """Read a non-101 answer's body (bounded) so ``response.text`` works."""
    try:
        body = response.raw.read(_MAX_ERROR_BODY, decode_content=True)
        response._content = body or b""
    except Exception:  # a broken body must not hide the status
        response._content = b""
    finally:
        response.close()


def _take_over(response: requests.Response) -> Upgraded:
    """Detach the upgraded socket from urllib3 and http.client."""
    raw = response.raw
    connection = raw._connection
    if connection is None or connection.sock is None:
        raise InvalidHandshake("the server answered 101 but the connection is gone")
    sock = connection.sock
    reader = getattr(raw._fp, "fp", None)
    leftover = _drain_buffered(reader, sock)
    pool = raw._pool
    raw._connection = None
    raw._pool = None
    connection.sock = None
    if reader is not None:
        raw._fp.fp = None  # type: ignore[union-attr]
        reader.close()
    if pool is not None:
        if isinstance(pool, _StreamPool):
            pool.stream = None  # taken over: the adapter must not close it
            pool.close()
        else:
            # Give the pool its slot back without the upgraded connection.
            try:
                pool._put_conn(None)
            except Exception:
                pass
    raw_socket = getattr(sock, "socket", sock)
    sock.settimeout(None)
    return Upgraded(
        sock=sock,
        raw_socket=raw_socket,
        leftover=leftover,
        request=response.request,
        response=response,
    )


def _drain_buffered(reader: Any, sock: Any) -> bytes:
    """Take the bytes http.client's reader holds past the response.

    One ``read1`` returns what the reader's buffer holds without touching
    the socket; only when the buffer is empty does it read the socket, once
    and without blocking, and what that read gets is ours anyway.
    """
    if reader is None:
        return b""
    sock.settimeout(0.0)
    try:
        return bytes(reader.read1(1 << 20) or b"")
    except (BlockingIOError, ssl_module.SSLWantReadError, ssl_module.SSLWantWriteError):
        return b""
    except OSError:
        return b""
    finally:
        sock.settimeout(None)
