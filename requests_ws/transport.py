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
  exact. A plain request answered by a plain ``101`` is exchanged by
  :mod:`.http_exchange` (urllib3's bytes out, the same response objects
  back, for a fraction of the CPU); anything else goes through urllib3.

Either way the request is a :class:`requests.PreparedRequest` built by the
session (headers, cookies, auth, netrc, URL userinfo; see
:mod:`.session_settings` for how the session's settings and the
environment's are applied, as requests applies them), the response passes
the session's hooks (``HTTPDigestAuth`` retries through them), cookies land
in ``session.cookies``, redirects follow requests' rules, and on 101 the
socket is taken out of urllib3 together with the bytes http.client already
buffered past the response, and detached from the pool.

The whole exchange runs under the opening's one :class:`.Deadline`; errors
leave as the types of :mod:`.exceptions` (a malformed answer is
:class:`InvalidMessage`, a socket error is also the built-in one), with URLs
redacted.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import logging
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
from requests.structures import CaseInsensitiveDict
from urllib3.util import SKIP_HEADER

from .deadline import Deadline
from .exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidProxyStatus,
    InvalidStatus,
    OpenTimeout,
    ProxyError,
    WebSocketException,
    network_error,
    ws_url,
)
from .http_exchange import (
    Replay,
    TakenStream,
    encode_request,
    parse_switching,
    read_head,
    switching_response,
)
from .redaction import redact_url
from .routes import Proxy, Route, RouteOptions, choose_proxies, open_stream, select_route
from .session_settings import environment_settings, prepare_request

__all__ = ["SocketLike", "Upgraded", "open_upgraded", "http_url"]

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_urllib3_log = logging.getLogger("urllib3.connectionpool")
# What HTTPAdapter(max_retries=0) makes for itself (read=False: a read error is
# raised as itself, not as MaxRetryError), made once: a Retry is never changed,
# its increment() returns a new one.
_NO_RETRIES = urllib3.util.Retry(0, read=False)
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
    """The ``http(s)://`` URL equivalent to a ``ws(s)://`` URI (any case)."""
    lowered = uri[:4].lower()
    if lowered == "wss:":
        return "https:" + uri[4:]
    if lowered.startswith("ws:"):
        return "http:" + uri[3:]
    return uri


class _StreamAdapter(requests.adapters.HTTPAdapter):
    """A one-shot adapter that speaks HTTP over streams opened by :mod:`.routes`.

    Each ``send`` opens a fresh stream (an auth retry gets a new connection).
    A plain request answered by a plain ``101`` is exchanged by
    :mod:`.http_exchange`; everything else goes through urllib3.
    """

    def __init__(self, route: Route, deadline: Deadline) -> None:
        super().__init__(max_retries=_NO_RETRIES)
        self.route = route
        self.deadline = deadline
        self.opened: list[_StreamPool | TakenStream] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        stream = open_stream(self.route, self.deadline)
        # An auth hook's retry comes through here too: it gets the time left.
        timeout = kwargs["timeout"] = self.deadline.remaining()
        taken = TakenStream(stream)
        self.opened.append(taken)
        try:
            head = encode_request(request, self.route.host, self.route.port)
            if head is None:
                taken.sock = None  # the pool owns it now
                return self._through_urllib3(stream, request, kwargs)
            stream.settimeout(timeout)
            try:
                stream.sendall(head)
            except Exception as exc:  # urllib3 decides (it reads on after EPIPE)
                taken.sock = None
                return self._through_urllib3(Replay(stream, None, exc), request, kwargs)
            read = read_head(stream)
            switching = None if read.end < 0 else parse_switching(read.data[: read.end])
            if switching is None:
                taken.sock = None
                return self._through_urllib3(Replay(stream, read, None), request, kwargs)
            reason, items = switching
            target = request.path_url
            raw = switching_response(reason, items, target, read.data[read.end :], taken)
            if _urllib3_log.isEnabledFor(logging.DEBUG):
                # What urllib3 logs for each response, so that its debug log still shows it.
                _urllib3_log.debug(
                    '%s://%s:%s "%s %s %s" %s %s',
                    "http",
                    self.route.host,
                    self.route.port,
                    "GET",
                    target,
                    "HTTP/1.1",
                    101,
                    0,
                )
            if _may_set_cookies(raw):
                return self.build_response(request, raw)
            return _cookieless_response(self, request, raw)
        except BaseException:
            taken.close_stream()
            raise

    def _through_urllib3(
        self, stream: Any, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> requests.Response:
        pool = _StreamPool(self.route, stream)
        self.opened.append(pool)
        try:
            self._pending_pool = pool
            return super().send(request, **kwargs)
        except BaseException:
            pool.close_stream()
            raise

    def close(self) -> None:
        """Close every stream this adapter opened, except one taken over."""
        for opened in self.opened:
            opened.close_stream()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """No pool manager: every request goes over a stream from open_stream."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        return self._pending_pool

    def cert_verify(self, *args: Any, **kwargs: Any) -> None:
        """TLS was set up by the route, with the session's verify and cert."""

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        return request.path_url


def _cookieless_response(
    adapter: requests.adapters.HTTPAdapter,
    request: requests.PreparedRequest,
    raw: urllib3.HTTPResponse,
) -> requests.Response:
    """``adapter.build_response(request, raw)`` for an answer without
    Set-Cookie (requests' own, but for the cookie extraction that would find
    nothing)."""
    response = requests.Response()
    response.status_code = raw.status
    response.headers = CaseInsensitiveDict(raw.headers)
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    response.raw = raw
    response.reason = raw.reason  # type: ignore[assignment]
    url: Any = request.url
    response.url = url.decode("utf-8") if isinstance(url, bytes) else url
    response.request = request
    response.connection = adapter
    return response


class _DeadlineSender:
    """A mounted adapter, as seen by the response's hooks.

    It stands in as ``response.connection`` so that an auth hook's retry
    (``HTTPDigestAuth`` calls ``r.connection.send``) gets the time left
    before the deadline, and turns requests' proxy errors into
    :class:`ProxyError` (:class:`InvalidProxyStatus` when the proxy's status
    is known).
    """

    def __init__(
        self, adapter: requests.adapters.BaseAdapter, deadline: Deadline, proxy_url: str | None
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
        return ProxyError(f"proxy {proxy} failed for {target}: {redact_url(str(exc))}", proxy=proxy)
    status = int(match.group(1))
    reason = (match.group(2) or "").strip()
    message = f"proxy {proxy} refused CONNECT to {target}: {status} {reason}".rstrip()
    if status == 407:
        message += " (the proxy requires authentication, or rejected the credentials)"
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.url = proxy
    response._content = b""
    return InvalidProxyStatus(response, message, proxy=proxy)


def _mounted_adapter_serves(
    adapter: requests.adapters.BaseAdapter,
    url: str,
    proxy_url: str | None,
    route_options: RouteOptions,
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
    if route_options.needs_own_route:
        return False
    if url.startswith("http:") and proxy_url:
        if "://" not in proxy_url:
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
    route_options: RouteOptions,
    deadline: Deadline,
) -> Upgraded:
    """Send the upgrade request through ``session``; return the upgraded stream.

    ``headers`` are the WebSocket headers; they win over the session's and
    ``requests_kwargs["headers"]``, and a ``None`` value removes a session
    header (as in requests). ``requests_kwargs`` may hold ``params``,
    ``headers``, ``cookies``, ``auth``, ``proxies``, ``verify``, ``cert`` and
    ``allow_redirects`` (checked by the caller). ``deadline`` (the opening's
    one deadline, started by the caller) bounds every step, redirects and
    auth retries included; it is finished here.

    Raises requests' ``ConnectionError``/``SSLError`` (also the built-in
    error) for network and TLS failures, :class:`ProxyError` when a proxy
    refuses, :class:`InvalidMessage` for a malformed or truncated answer,
    :class:`InvalidStatus` for a final answer other than 101, requests'
    ``TooManyRedirects``, :class:`InvalidHandshake` for a redirect from
    ``wss://`` to ``ws://``, and :class:`OpenTimeout` when ``open_timeout``
    expires.
    """
    try:
        upgraded = _exchange(session, uri, headers, requests_kwargs, route_options, deadline)
    except OpenTimeout:
        deadline.finish(check=False)
        raise
    except Exception as exc:
        deadline.finish(check=False)
        if deadline.fired or isinstance(exc, (requests.exceptions.Timeout, TimeoutError)):
            raise deadline.expired(_during(exc)) from exc
        raise
    except BaseException:
        deadline.finish(check=False)
        raise
    try:
        deadline.finish()
    except OpenTimeout:
        _close_upgraded(upgraded)
        raise
    return upgraded


def _during(exc: BaseException) -> str:
    """What the opening was doing when the deadline cut it, for the message."""
    if isinstance(exc, InvalidStatus):
        return f"reading the body of the HTTP {exc.response.status_code} answer"
    return ""


def _close_upgraded(upgraded: Upgraded) -> None:
    try:
        upgraded.sock.close()
    finally:
        if upgraded.raw_socket is not upgraded.sock:
            upgraded.raw_socket.close()


def _exchange(
    session: requests.Session,
    uri: str,
    headers: Mapping[str, str | None],
    requests_kwargs: Mapping[str, Any],
    route_options: RouteOptions,
    deadline: Deadline,
) -> Upgraded:
    """The request, its redirects and auth retries, up to the 101."""
    # requests_kwargs holds only the names the doors accept (checked there).
    allow_redirects = requests_kwargs.get("allow_redirects", True)
    # A None value removes a session header, as requests documents for
    # Session.request (merge_setting drops it); requests' own annotation of
    # Request(headers=) leaves None out, hence the Any.
    merged_headers: Any = _merged_headers(headers, requests_kwargs.get("headers"))
    request = requests.Request(
        "GET",
        http_url(uri),
        headers=merged_headers,
        params=requests_kwargs.get("params"),
        cookies=requests_kwargs.get("cookies"),
        auth=requests_kwargs.get("auth"),
    )
    prepared = prepare_request(session, request)
    explicit_proxies = requests_kwargs.get("proxies")
    verify = requests_kwargs.get("verify")
    cert = requests_kwargs.get("cert")

    history: list[requests.Response] = []
    while True:
        url = str(prepared.url)
        settings = environment_settings(session, url, explicit_proxies, verify, cert)
        response = _send_once(session, prepared, settings, deadline, route_options)
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
                    f"exceeded {session.max_redirects} redirects while opening {redact_url(uri)}",
                    response=response,
                )
            prepared = _follow_redirect(session, response, prepared)
        finally:
            if not taken:
                # Also releases http.client's reference to the socket.
                response.close()
            if isinstance(response.connection, _StreamAdapter):
                response.connection.close()
        if route_options.sock is not None or route_options.unix_path is not None:
            raise InvalidHandshake(
                f"cannot follow the redirect to {ws_url(str(prepared.url))}: the connection "
                "was opened on a given socket (sock= or unix_connect)"
            )


def _send_once(
    session: requests.Session,
    prepared: requests.PreparedRequest,
    settings: Mapping[str, Any],
    deadline: Deadline,
    route_options: RouteOptions,
) -> requests.Response:
    """Send one request and run the session's hooks and cookie extraction."""
    url = str(prepared.url)
    candidates = choose_proxies(url, settings["proxies"], route_options, session)
    proxy_url = candidates[0]
    if proxy_url:
        Proxy.parse(proxy_url)  # InvalidProxy before any I/O, whichever adapter sends
    # The mapping a mounted adapter gets: the one proxy chosen above, or none.
    proxies = {"all": proxy_url} if proxy_url else {}
    adapter = session.get_adapter(url)
    sender: _StreamAdapter | _DeadlineSender
    if _mounted_adapter_serves(adapter, url, proxy_url, route_options):
        sender = _DeadlineSender(adapter, deadline, proxy_url)
    else:
        route = select_route(
            url,
            proxies=settings["proxies"],
            verify=settings["verify"],
            cert=settings["cert"],
            options=route_options,
            session=session,
            candidates=candidates,
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
    try:
        first = sender.send(prepared, **send_kwargs)
    except requests.exceptions.ConnectionError as exc:
        invalid = _invalid_message(exc, url)
        if invalid is not exc:
            raise invalid from invalid.__cause__
        root = _root_os_error(exc)
        if isinstance(exc, WebSocketException) or root is None or isinstance(exc, type(root)):
            raise
        # urllib3 (a mounted adapter) wraps the socket's error: make the
        # requests exception also the built-in one, as on our own route.
        raise network_error(type(exc), str(exc), root) from exc
    first.elapsed = datetime.timedelta(seconds=time.monotonic() - started)
    if isinstance(sender, _DeadlineSender):
        # An auth hook's retry (``r.connection.send``) gets the time left.
        first.connection = sender  # type: ignore[assignment]  # duck-typed: send, close
        # urllib3 opened this socket: the deadline can watch it only from
        # here on (the error body, the auth retry's reading); the head was
        # bounded by the per-read timeout alone.
        opened = getattr(getattr(first.raw, "_connection", None), "sock", None)
        if isinstance(opened, socket.socket):
            deadline.watch(opened)
    try:
        response = requests.hooks.dispatch_hook("response", prepared.hooks, first, **send_kwargs)
    except BaseException:
        # A hook failed (an auth retry timed out...): close what was opened.
        first.close()
        if isinstance(sender, _StreamAdapter):
            sender.close()
        raise
    if response.history:
        # An auth hook (HTTPDigestAuth) retried: keep the cookies of each answer.
        for earlier in response.history:
            extract_cookies_to_jar(session.cookies, earlier.request, earlier.raw)
    if _may_set_cookies(response.raw):
        extract_cookies_to_jar(session.cookies, response.request, response.raw)
    result: requests.Response = response
    return result


def _may_set_cookies(raw: Any) -> bool:
    """False when ``raw`` (a urllib3 response) has no Set-Cookie header:
    extracting its cookies would change nothing."""
    headers = getattr(raw, "headers", None)
    if not isinstance(headers, urllib3.HTTPHeaderDict):
        return True
    return "set-cookie" in headers or "set-cookie2" in headers


def _root_os_error(error: BaseException) -> OSError | None:
    """The socket's own error under urllib3's and requests' wrappers."""
    seen: set[int] = set()
    current: BaseException | None = error
    found: OSError | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and not isinstance(
            current, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)
        ):
            found = current
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
        elif current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
        else:
            current = current.__cause__ or current.__context__
    return found


def _invalid_message(
    error: requests.exceptions.ConnectionError, url: str
) -> requests.exceptions.ConnectionError:
    """:class:`InvalidMessage` when ``error`` says the answer was not valid
    HTTP or was cut short; ``error`` itself otherwise."""
    reason = error.args[0] if error.args else None
    if isinstance(reason, urllib3.exceptions.ProtocolError) and len(reason.args) > 1:
        reason = reason.args[1]
    if not isinstance(reason, http.client.HTTPException):
        return error
    if isinstance(reason, http.client.RemoteDisconnected):
        detail = "the server closed the connection without answering the upgrade request"
    elif isinstance(reason, http.client.IncompleteRead):
        detail = "the server's answer was cut short"
    elif isinstance(reason, http.client.LineTooLong):
        detail = f"the server's answer has a line too long ({reason})"
    else:
        detail = f"the server's answer is not valid HTTP: {str(reason)[:100]!r}"
    invalid = InvalidMessage(f"invalid answer from {ws_url(url)}: {detail}")
    invalid.__cause__ = reason
    return invalid


def _follow_redirect(
    session: requests.Session,
    response: requests.Response,
    prepared: requests.PreparedRequest,
) -> requests.PreparedRequest:
    """The next request of a redirect, built as requests'
    ``Session.resolve_redirects`` builds it (relative and scheme-relative
    targets, cookies of the request and the session for the new URL,
    ``Authorization`` dropped across hosts, netrc for the new host,
    ``Proxy-Authorization`` dropped); ``ws(s)://`` targets in any case are
    accepted, and a downgrade from TLS is refused."""
    location = session.get_redirect_target(response)
    if not location:
        _read_error_body(response)
        raise InvalidStatus(response)
    if location.startswith("//"):
        location = f"{urllib.parse.urlsplit(str(response.url)).scheme}:{location}"
    location = http_url(location)
    parsed = urllib.parse.urlsplit(location)
    if parsed.netloc:
        target = requests.utils.requote_uri(location)
    else:
        target = urllib.parse.urljoin(str(response.url), requests.utils.requote_uri(location))
    old_scheme = urllib.parse.urlsplit(str(prepared.url)).scheme.lower()
    new_scheme = urllib.parse.urlsplit(target).scheme.lower()
    if new_scheme not in ("http", "https"):
        _read_error_body(response)
        raise InvalidHandshake(
            f"cannot follow a redirect to {redact_url(location)}: not a WebSocket URI"
        )
    if old_scheme == "https" and new_scheme == "http":
        _read_error_body(response)
        raise InvalidHandshake(
            f"refused a redirect from {ws_url(str(prepared.url))} to {ws_url(target)}: "
            "it would drop TLS (wss:// to ws://)"
        )
    _read_error_body(response)
    redirected = prepared.copy()
    redirected.url = target
    session.rebuild_method(redirected, response)
    headers = redirected.headers
    headers.pop("Cookie", None)
    cookie_jar = redirected._cookies
    if cookie_jar is None:  # prepare_cookies always sets it; for the type checker
        cookie_jar = requests.cookies.RequestsCookieJar()
    extract_cookies_to_jar(cookie_jar, prepared, response.raw)
    merge_cookies(cookie_jar, session.cookies)
    redirected.prepare_cookies(cookie_jar)
    # requests drops Proxy-Authorization on every redirect (and re-adds it
    # only for plain-HTTP forwarding, which never happens here: the route
    # always tunnels, so the server would see it).
    headers.pop("Proxy-Authorization", None)
    session.rebuild_auth(redirected, response)
    response.close()
    return redirected


def _as_sent(response: requests.Response) -> None:
    """Make the requests of ``response`` and its history show what went on
    the wire: ``user_agent_header=None`` went out as urllib3's SKIP_HEADER
    marker, which means no User-Agent at all."""
    for sent in [response.request, *(earlier.request for earlier in response.history)]:
        if sent is not None and sent.headers.get("User-Agent") == SKIP_HEADER:
            del sent.headers["User-Agent"]


def _read_error_body(response: requests.Response) -> None:
    """Read a non-101 answer's body (bounded) so ``response.text`` works."""
    _as_sent(response)
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
    if isinstance(sock, Replay):
        # urllib3 read this answer again after http_exchange had read it.
        leftover += sock.unread()
        sock = sock.stream
    pool = raw._pool
    raw._connection = None
    raw._pool = None
    connection.sock = None
    if reader is not None:
        raw._fp.fp = None
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
    _as_sent(response)
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
