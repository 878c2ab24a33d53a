"""The two doors to a connection: the seed API (:func:`connect`,
:func:`unix_connect`) and the requests door (:class:`Session`,
:func:`ws_connect`).

There is one handshake path: :func:`connect` is ``ws_connect`` on a fresh
default :class:`requests.Session`, just as ``requests.get`` is
``Session().get``. This module validates arguments, builds the upgrade headers
(:mod:`.handshake`), sends them through the session (:mod:`.transport`),
checks the 101 response and hands the socket to a :class:`ClientConnection`.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl as ssl_module
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict

import requests
import requests.utils
from requests.cookies import cookiejar_from_dict

from .arguments import check_header, check_keywords, header_items, keyword_checked
from .connection import ClientConnection
from .deadline import Deadline
from .exceptions import InvalidURI
from .extensions import ClientExtensionFactory, ClientPerMessageDeflateFactory
from .handshake import build_request_headers, check_response, generate_key
from .protocol import ClientProtocol
from .proxy_auth import ProxyAuth, share_process_memory
from .redaction import redact_url
from .routes import RouteOptions, choose_proxy
from .session_settings import environment_settings
from .transport import http_url, open_upgraded
from .version import USER_AGENT

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "connect",
    "unix_connect",
    "Session",
    "ws_connect",
    "USER_AGENT",
    "ConnectOptions",
    "parse_uri",
]

HeadersLike = Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]]
# A string: LoggerAdapter is subscriptable at run time only from Python 3.11.
LoggerLike: TypeAlias = "logging.Logger | logging.LoggerAdapter[Any] | str"
AuthLike = tuple[str, str] | requests.auth.AuthBase | Callable[..., Any]
CertLike = str | tuple[str, str]


class ConnectionOptions(TypedDict, total=False):
    """The keyword arguments of every door but ``session`` (:func:`connect`
    documents them all).

    Doors that forward them (``ws_connect``, ``Session.ws_connect``,
    ``unix_connect``, ``reconnect``, ``unix_reconnect``) are typed with
    ``**options: Unpack[...]``, so a type checker catches a misspelled
    keyword on each of them.
    """

    sock: socket.socket | None
    ssl: ssl_module.SSLContext | None
    server_hostname: str | None
    origin: str | None
    extensions: Sequence[ClientExtensionFactory] | None
    subprotocols: Sequence[str] | None
    compression: str | None
    additional_headers: HeadersLike | None
    user_agent_header: str | None
    proxy: str | Literal[True] | None
    proxy_ssl: ssl_module.SSLContext | None
    proxy_server_hostname: str | None
    proxy_auth: ProxyAuth | None
    open_timeout: float | None
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float | None
    max_size: int | None
    max_queue: int | tuple[int | None, int | None] | None
    logger: LoggerLike | None
    create_connection: type[ClientConnection] | None
    params: Any
    headers: Mapping[str, str | bytes | None] | None
    cookies: Mapping[str, str] | CookieJar | None
    auth: AuthLike | None
    proxies: Mapping[str, str] | None
    verify: bool | str | None
    cert: CertLike | None
    allow_redirects: bool


class ConnectOptions(ConnectionOptions, total=False):
    """:class:`ConnectionOptions` and the ``session`` to go through."""

    session: requests.Session | None


CONNECT_OPTIONS = frozenset(ConnectOptions.__optional_keys__)

_REQUESTS_KWARGS = (
    "params",
    "headers",
    "cookies",
    "auth",
    "proxies",
    "verify",
    "cert",
    "allow_redirects",
)


def parse_uri(uri: str) -> urllib.parse.SplitResult:
    """Check that ``uri`` is a WebSocket URI; raise :class:`InvalidURI` if not.

    Schemes compare case-insensitively (``WSS://`` is ``wss://``). The URI in
    the error has its password masked.
    """
    if not isinstance(uri, str):
        raise InvalidURI(repr(uri), f"expected a str, got {type(uri).__name__}")
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError as exc:
        raise InvalidURI(redact_url(uri), str(exc)) from None
    scheme = parsed.scheme.lower()
    if scheme not in ("ws", "wss"):
        if scheme in ("http", "https"):
            hint = f"use {scheme.replace('http', 'ws')}:// for a WebSocket"
        else:
            hint = "the scheme must be ws:// or wss://"
        raise InvalidURI(redact_url(uri), hint)
    if not parsed.hostname:
        raise InvalidURI(redact_url(uri), "it has no host name")
    if parsed.fragment:
        raise InvalidURI(redact_url(uri), "a WebSocket URI cannot have a #fragment")
    if "\r" in uri or "\n" in uri or "\x00" in uri:
        raise InvalidURI(redact_url(uri), "it contains a CR, LF or NUL")
    try:
        parsed.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidURI(redact_url(uri), f"bad port: {exc}") from None
    return parsed


def _default_extensions(
    compression: str | None, extensions: Sequence[ClientExtensionFactory] | None
) -> list[ClientExtensionFactory] | None:
    if compression == "deflate":
        factories = list(extensions or ())
        if not any(factory.name == "permessage-deflate" for factory in factories):
            factories.append(ClientPerMessageDeflateFactory())
        return factories
    if compression is not None:
        raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")
    return None if extensions is None else list(extensions)


def _user_agent(
    session: requests.Session,
    user_agent_header: str | None,
    additional: list[tuple[str, str]],
    requests_headers: Mapping[str, Any] | None,
) -> str | None:
    """Apply the User-Agent rule: ``additional_headers`` (as in websockets),
    else an explicit ``user_agent_header``, else the user's own in
    ``headers=`` or the session, else ours."""
    for name, value in additional:
        if name.lower() == "user-agent":
            return value
    if user_agent_header is not USER_AGENT:
        return user_agent_header
    if requests_headers:
        for name, value in requests_headers.items():
            if str(name).lower() == "user-agent":
                return None if value is None else str(value)
    session_value = session.headers.get("User-Agent")
    if session_value and session_value != requests.utils.default_user_agent():
        return str(session_value)
    return USER_AGENT


def _check_cookies(cookies: Any, source: str) -> None:
    """A CR, LF or NUL in a cookie name or value is an error before any I/O."""
    if cookies is None:
        return
    if isinstance(cookies, CookieJar):
        pairs: Iterable[tuple[Any, Any]] = ((c.name, c.value or "") for c in cookies)
    elif isinstance(cookies, Mapping):
        pairs = cookies.items()
    else:
        raise TypeError(f"{source} must be a dict or a CookieJar, not {type(cookies).__name__}")
    for name, value in pairs:
        for part in (name, value):
            if isinstance(part, (str, bytes)) and any(
                character in (part if isinstance(part, str) else part.decode("latin-1"))
                for character in "\r\n\x00"
            ):
                raise ValueError(f"invalid cookie {name!r} in {source}: it contains CR, LF or NUL")


def _check_timeouts(options: ConnectOptions) -> None:
    for name in ("open_timeout", "ping_interval", "ping_timeout", "close_timeout"):
        value = options.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number of seconds or None, not {value!r}")
        if value < 0 or value != value:
            raise ValueError(f"{name} must be >= 0 seconds or None, got {value!r}")
    max_size = options.get("max_size")
    if max_size is not None and (
        isinstance(max_size, bool) or not isinstance(max_size, int) or max_size <= 0
    ):
        raise ValueError("max_size must be a positive number of bytes or None")


def _check_proxy_ssl(
    session: requests.Session,
    uri: str,
    route: RouteOptions,
    requests_kwargs: Mapping[str, Any],
) -> None:
    """``proxy_ssl=`` / ``proxy_server_hostname=`` need an https:// proxy."""
    for name, value in (
        ("proxy_ssl", route.proxy_ssl),
        ("proxy_server_hostname", route.proxy_server_hostname),
    ):
        if value is None:
            continue
        url = http_url(uri)
        proxies: Mapping[str, str] = requests_kwargs.get("proxies") or {}
        if route.proxy is True:
            settings = environment_settings(session, url, proxies, None, None)
            proxies = settings["proxies"]
        chosen = choose_proxy(url, dict(proxies), route, session)
        if not (chosen or "").lower().startswith("https://"):
            shown = f"the proxy is {redact_url(chosen)}" if chosen else "no proxy is used"
            raise ValueError(
                f"{name}= configures TLS to an https:// proxy, but {shown} for {redact_url(uri)}"
            )


_default_session: requests.Session | None = None


def _fresh_session() -> requests.Session:
    """A fresh default :class:`requests.Session`, for an opening without a
    session of the caller's.

    Made the way requests unpickles a session (``__setstate__``), from the
    state of one default session built once: every setting a copy of the
    default, the cookie jar new and empty. The default session's two plain
    ``HTTPAdapter`` are shared: they never send (behind a plain HTTPAdapter
    :mod:`.transport` takes its own route), and building their pool managers
    for every opening cost as much as the rest of the session.
    """
    global _default_session
    default = _default_session
    if default is None:
        default = requests.Session()
        if not set(vars(default)) <= set(default.__attrs__):
            return default  # a requests whose state __getstate__ does not cover
        _default_session = default
    state = default.__getstate__()
    for name, value in state.items():
        if name == "cookies":
            state[name] = cookiejar_from_dict({})  # as Session() makes it
        elif name == "hooks":
            state[name] = {event: list(hooks) for event, hooks in value.items()}
        elif name == "adapters":
            state[name] = type(value)(value)
        elif hasattr(value, "copy"):
            state[name] = value.copy()
    session = requests.Session.__new__(requests.Session)
    session.__setstate__(state)
    return session


def _open(uri: str, options: ConnectOptions, unix_path: str | None = None) -> ClientConnection:
    """The one opening path behind every door; ``options`` are checked here."""
    open_timeout = options.get("open_timeout", 10)
    deadline = Deadline(open_timeout if isinstance(open_timeout, (int, float)) else None, uri)
    parsed = parse_uri(uri)
    secure = parsed.scheme.lower() == "wss"
    ssl = options.get("ssl")
    if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext, not {type(ssl).__name__}")
    if ssl is not None and not secure:
        raise ValueError(f"ssl= was given but {redact_url(uri)} is a ws:// URI: use wss:// for TLS")
    proxy_ssl = options.get("proxy_ssl")
    if proxy_ssl is not None and not isinstance(proxy_ssl, ssl_module.SSLContext):
        raise TypeError(f"proxy_ssl must be an ssl.SSLContext, not {type(proxy_ssl).__name__}")
    proxy = options.get("proxy", True)
    if proxy is not True and proxy is not None and not isinstance(proxy, str):
        raise TypeError(f"proxy must be True, a proxy URL or None, not {proxy!r}")
    proxy_auth = options.get("proxy_auth")
    if proxy_auth is not None and not (
        isinstance(getattr(proxy_auth, "scheme", None), str)
        and proxy_auth.scheme
        and callable(getattr(proxy_auth, "respond", None))
    ):
        raise TypeError(
            "proxy_auth must be a requests_ws.ProxyAuth with a scheme name and respond(), "
            f"not {type(proxy_auth).__name__}"
        )
    extensions = options.get("extensions")
    factories = _default_extensions(options.get("compression", "deflate"), extensions)
    subprotocols = options.get("subprotocols")
    _check_timeouts(options)
    requests_kwargs = {name: options[name] for name in _REQUESTS_KWARGS if name in options}  # type: ignore[literal-required]
    header_items(requests_kwargs.get("headers"), "headers")
    _check_cookies(requests_kwargs.get("cookies"), "cookies")

    session = options.get("session")
    own_session = session is None
    if session is None:
        session = _fresh_session()
        share_process_memory(session)  # what proxies asked for outlives this session
    elif not isinstance(session, requests.Session):
        raise TypeError(f"session must be a requests.Session, not {type(session).__name__}")
    try:
        if not own_session:  # a fresh default session holds requests' defaults only
            header_items(session.headers, "session.headers")
            _check_cookies(session.cookies, "session.cookies")
        key = generate_key()
        user_agent_header = options.get("user_agent_header", USER_AGENT)
        if user_agent_header is not None and user_agent_header is not USER_AGENT:
            check_header("User-Agent", user_agent_header, "user_agent_header")
        additional = header_items(options.get("additional_headers"), "additional_headers")
        user_agent = _user_agent(
            session, user_agent_header, additional, requests_kwargs.get("headers")
        )
        header_list = build_request_headers(
            origin=options.get("origin"),
            extensions=factories,
            subprotocols=subprotocols,
            additional_headers=[
                (name, value) for name, value in additional if name.lower() != "user-agent"
            ],
            user_agent_header=None,
            key=key,
        )
        headers: dict[str, str | None] = {}
        for name, value in header_list:
            headers[name] = value if name not in headers else f"{headers[name]}, {value}"
        headers["User-Agent"] = user_agent
        route = RouteOptions(
            sock=options.get("sock"),
            unix_path=unix_path,
            ssl=ssl,
            server_hostname=options.get("server_hostname"),
            proxy=proxy,
            proxy_ssl=proxy_ssl,
            proxy_server_hostname=options.get("proxy_server_hostname"),
            proxy_auth=proxy_auth,
            use_pac=requests_kwargs.get("proxies") is None,
            user_agent=user_agent,
        )
        _check_proxy_ssl(session, uri, route, requests_kwargs)
        upgraded = open_upgraded(
            session,
            uri,
            headers=headers,
            requests_kwargs=requests_kwargs,
            route_options=route,
            deadline=deadline,
        )
    finally:
        if own_session:
            session.close()

    try:
        sent_key = upgraded.request.headers.get("Sec-WebSocket-Key", key)
        accepted, subprotocol = check_response(
            upgraded.response.headers,
            key=str(sent_key),
            extensions=factories,
            subprotocols=subprotocols,
        )
        protocol = ClientProtocol(max_size=options.get("max_size", 2**20), extensions=accepted)
        connection_class = options.get("create_connection") or ClientConnection
        return connection_class(
            upgraded.sock,
            protocol,
            raw_socket=upgraded.raw_socket,
            leftover=upgraded.leftover,
            request=upgraded.request,
            response=upgraded.response,
            subprotocol=subprotocol,
            ping_interval=options.get("ping_interval", 20),
            ping_timeout=options.get("ping_timeout", 20),
            close_timeout=options.get("close_timeout", 10),
            max_queue=options.get("max_queue", 16),
            logger=options.get("logger"),
        )
    except BaseException:
        try:
            upgraded.sock.close()
        finally:
            if upgraded.raw_socket is not upgraded.sock:
                upgraded.raw_socket.close()
        raise


@keyword_checked
def connect(
    uri: str,
    *,
    session: requests.Session | None = None,
    # TCP/TLS
    sock: socket.socket | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    # WebSocket
    origin: str | None = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    subprotocols: Sequence[str] | None = None,
    compression: str | None = "deflate",
    # HTTP
    additional_headers: HeadersLike | None = None,
    user_agent_header: str | None = USER_AGENT,
    proxy: str | Literal[True] | None = True,
    proxy_ssl: ssl_module.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    proxy_auth: ProxyAuth | None = None,
    # Timeouts
    open_timeout: float | None = 10,
    ping_interval: float | None = 20,
    ping_timeout: float | None = 20,
    close_timeout: float | None = 10,
    # Limits
    max_size: int | None = 2**20,
    max_queue: int | tuple[int | None, int | None] | None = 16,
    # Logging
    logger: LoggerLike | None = None,
    # Escape hatch
    create_connection: type[ClientConnection] | None = None,
    # requests' per-request settings, as in Session.request
    params: Any = None,
    headers: Mapping[str, str | bytes | None] | None = None,
    cookies: Mapping[str, str] | CookieJar | None = None,
    auth: AuthLike | None = None,
    proxies: Mapping[str, str] | None = None,
    verify: bool | str | None = None,
    cert: CertLike | None = None,
    allow_redirects: bool = True,
) -> ClientConnection:
    """Open a WebSocket connection to ``uri`` and return it.

    The upgrade request goes through ``session`` (a fresh
    :class:`requests.Session` when ``None``): its adapters, proxies, auth,
    cookies, headers and TLS settings apply. ``params``, ``headers``,
    ``cookies``, ``auth``, ``proxies``, ``verify``, ``cert`` and
    ``allow_redirects`` have the meaning they have in
    :meth:`requests.Session.request`.

    Parameters mirror the seed API: ``sock`` (a connected socket: no proxy,
    no DNS), ``ssl`` (an SSLContext that wins over ``verify``/``cert``; only
    with ``wss://``), ``server_hostname`` (SNI and certificate host),
    ``origin``, ``extensions``, ``subprotocols`` (a list of str),
    ``compression`` (``"deflate"`` or ``None``), ``additional_headers`` (their
    ``User-Agent`` wins), ``user_agent_header`` (``None`` sends none; by
    default a User-Agent set on the session or in ``headers=`` is kept, else
    ``USER_AGENT``), ``proxy`` (``True``: the session's and the environment's;
    a URL; ``None``: direct), ``proxy_ssl`` and ``proxy_server_hostname``
    (only with an ``https://`` proxy), ``proxy_auth`` (a :class:`ProxyAuth`
    answering a proxy authentication scheme requests_ws does not know),
    ``open_timeout`` (one deadline for
    everything up to the open connection), ``ping_interval``,
    ``ping_timeout``, ``close_timeout``, ``max_size``, ``max_queue``,
    ``logger`` and ``create_connection`` (a :class:`ClientConnection`
    subclass to instantiate).

    Bad arguments raise ``TypeError``/``ValueError`` naming the argument,
    before any I/O (:class:`InvalidURI` for the URI). Then: requests'
    ``ConnectionError``/``SSLError`` (also ``ConnectionRefusedError``,
    ``socket.gaierror``, ``ssl.SSLCertVerificationError``...) for network and
    TLS failures; :class:`InvalidProxy`, :class:`ProxyError`,
    :class:`InvalidProxyMessage`, :class:`InvalidProxyStatus` for the proxy;
    :class:`InvalidMessage`, :class:`InvalidStatus`, :class:`InvalidHeader`,
    :class:`InvalidUpgrade`, :class:`NegotiationError` or
    :class:`InvalidHandshake` when the handshake fails; :class:`OpenTimeout`
    (a ``TimeoutError``) when ``open_timeout`` expires.
    """
    options: ConnectOptions = {
        "session": session,
        "sock": sock,
        "ssl": ssl,
        "server_hostname": server_hostname,
        "origin": origin,
        "extensions": extensions,
        "subprotocols": subprotocols,
        "compression": compression,
        "additional_headers": additional_headers,
        "user_agent_header": user_agent_header,
        "proxy": proxy,
        "proxy_ssl": proxy_ssl,
        "proxy_server_hostname": proxy_server_hostname,
        "proxy_auth": proxy_auth,
        "open_timeout": open_timeout,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "close_timeout": close_timeout,
        "max_size": max_size,
        "max_queue": max_queue,
        "logger": logger,
        "create_connection": create_connection,
        "params": params,
        "headers": headers,
        "cookies": cookies,
        "auth": auth,
        "proxies": proxies,
        "verify": verify,
        "cert": cert,
        "allow_redirects": allow_redirects,
    }
    return _open(uri, options)


def unix_options(
    path: str | os.PathLike[str] | None, uri: str | None, options: ConnectOptions
) -> tuple[str, str | None, ConnectOptions]:
    """Check ``unix_connect``'s own arguments; return the URI, path and options."""
    sock = options.get("sock")
    if path is None and sock is None:
        raise ValueError("unix_connect() needs path= (the socket's file) or sock=")
    if path is not None and sock is not None:
        raise ValueError("unix_connect() takes path= or sock=, not both")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    if uri is None:
        uri = "wss://localhost/" if options.get("ssl") is not None else "ws://localhost/"
    checked: ConnectOptions = {"proxy": None, **options}
    return uri, None if path is None else os.fspath(path), checked


def unix_connect(
    path: str | os.PathLike[str] | None = None,
    uri: str | None = None,
    **options: Unpack[ConnectOptions],
) -> ClientConnection:
    """Connect over a Unix domain socket at ``path``, then speak WebSocket.

    ``uri`` defaults to ``ws://localhost/``, or ``wss://localhost/`` when
    ``ssl`` is given. Takes the keyword arguments of :func:`connect`; with
    ``sock=`` instead of ``path`` the socket is used as is (``path`` and
    ``sock`` together, or neither, is a ``ValueError``).
    """
    check_keywords("unix_connect", options, CONNECT_OPTIONS)
    uri, unix_path, options = unix_options(path, uri, options)
    return _open(uri, options, unix_path)


def ws_connect(
    session: requests.Session, url: str, **options: Unpack[ConnectionOptions]
) -> ClientConnection:
    """Open a WebSocket connection through any :class:`requests.Session`.

    Everything the session holds applies to the handshake: proxies (and the
    environment's when ``trust_env``), auth, cookies, headers, ``verify``,
    ``cert`` and mounted adapters. Keyword arguments are those of
    :func:`connect`.
    """
    check_keywords("ws_connect", options, CONNECT_OPTIONS - {"session"})
    merged: ConnectOptions = {**options, "session": session}
    return _open(url, merged)


class Session(requests.Session):
    """A :class:`requests.Session` that can also open WebSocket connections."""

    def ws_connect(self, url: str, **options: Unpack[ConnectionOptions]) -> ClientConnection:
        """Open a WebSocket connection to ``url`` through this session.

        See :func:`requests_ws.ws_connect` and :func:`requests_ws.connect`.
        """
        check_keywords("ws_connect", options, CONNECT_OPTIONS - {"session"})
        merged: ConnectOptions = {**options, "session": self}
        return _open(url, merged)
