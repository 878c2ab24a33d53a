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
import socket
import ssl as ssl_module
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import requests
import requests.utils

from .connection import ClientConnection
from .exceptions import InvalidURI
from .extensions import ClientExtensionFactory, ClientPerMessageDeflateFactory
from .handshake import build_request_headers, check_response, generate_key
from .protocol import ClientProtocol
from .proxy_auth import ProxyAuth, share_process_memory
from .transport import open_upgraded
from .version import USER_AGENT

__all__ = ["connect", "unix_connect", "Session", "ws_connect", "USER_AGENT", "parse_uri"]

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]

_REQUESTS_KWARGS = frozenset(
    {"params", "headers", "cookies", "auth", "proxies", "verify", "cert", "allow_redirects"}
)


def parse_uri(uri: str) -> urllib.parse.SplitResult:
    """Check that ``uri`` is a WebSocket URI; raise :class:`InvalidURI` if not."""
    if not isinstance(uri, str):
        raise InvalidURI(repr(uri), f"expected a str, got {type(uri).__name__}")
    try:
        parsed = urllib.parse.urlsplit(uri)
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    if parsed.scheme not in ("ws", "wss"):
        if parsed.scheme in ("http", "https"):
            hint = f"use {parsed.scheme.replace('http', 'ws')}:// for a WebSocket"
        else:
            hint = "the scheme must be ws:// or wss://"
        raise InvalidURI(uri, hint)
    if not parsed.hostname:
        raise InvalidURI(uri, "it has no host name")
    if parsed.fragment:
        raise InvalidURI(uri, "a WebSocket URI cannot have a #fragment")
    try:
        parsed.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InvalidURI(uri, f"bad port: {exc}") from None
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
    requests_headers: Mapping[str, str | None] | None,
) -> str | None:
    """Apply the User-Agent rule: explicit argument, else the user's own, else ours."""
    if user_agent_header is not USER_AGENT:
        return user_agent_header
    if requests_headers:
        for name, value in requests_headers.items():
            if name.lower() == "user-agent":
                return value
    session_value = session.headers.get("User-Agent")
    if session_value and session_value != requests.utils.default_user_agent():
        return str(session_value)
    return USER_AGENT


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
    logger: logging.Logger | logging.LoggerAdapter[Any] | str | None = None,
    # Escape hatch
    create_connection: type[ClientConnection] | None = None,
    **requests_kwargs: Any,
) -> ClientConnection:
    """Open a WebSocket connection to ``uri`` and return it.

    The upgrade request goes through ``session`` (a fresh
    :class:`requests.Session` when ``None``): its adapters, proxies, auth,
    cookies, headers and TLS settings apply. ``requests_kwargs`` takes
    ``params``, ``headers``, ``cookies``, ``auth``, ``proxies``, ``verify``,
    ``cert`` and ``allow_redirects`` with the meaning they have in
    :meth:`requests.Session.request`.

    Parameters mirror the seed API: ``sock`` (a connected socket: no proxy,
    no DNS), ``ssl`` (an SSLContext that wins over ``verify``/``cert``),
    ``server_hostname`` (SNI and certificate host), ``origin``,
    ``extensions``, ``subprotocols``, ``compression`` (``"deflate"`` or
    ``None``), ``additional_headers``, ``user_agent_header`` (``None`` sends
    none; by default a User-Agent set on the session or in ``headers=`` is
    kept, else ``USER_AGENT``), ``proxy`` (``True``: the session's and the
    environment's; a URL; ``None``: direct), ``proxy_ssl``,
    ``proxy_server_hostname``, ``proxy_auth`` (a :class:`ProxyAuth` answering a
    proxy authentication scheme requests_ws does not know), ``open_timeout``
    (bounds everything up to the open connection), ``ping_interval``,
    ``ping_timeout``, ``close_timeout``,
    ``max_size``, ``max_queue``, ``logger`` and ``create_connection`` (a
    :class:`ClientConnection` subclass to instantiate).

    Raises :class:`InvalidURI` before any I/O for a bad URI; requests'
    ``ConnectionError``/``SSLError`` for network and TLS failures;
    :class:`ProxyError`, :class:`InvalidStatus`, :class:`InvalidHeader`,
    :class:`InvalidUpgrade`, :class:`NegotiationError` or
    :class:`InvalidHandshake` when the handshake fails; :class:`OpenTimeout`
    (a ``TimeoutError``) when ``open_timeout`` expires.
    """
    parse_uri(uri)
    unknown = set(requests_kwargs) - _REQUESTS_KWARGS - {"unix_path"}
    if unknown:
        raise TypeError(f"connect() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    unix_path = requests_kwargs.pop("unix_path", None)
    factories = _default_extensions(compression, extensions)
    if max_size is not None and max_size <= 0:
        raise ValueError("max_size must be a positive number of bytes or None")
    if proxy_auth is not None and not (
        isinstance(getattr(proxy_auth, "scheme", None), str)
        and proxy_auth.scheme
        and callable(getattr(proxy_auth, "respond", None))
    ):
        raise TypeError(
            "proxy_auth must be a requests_ws.ProxyAuth with a scheme name and respond(), "
            f"not {type(proxy_auth).__name__}"
        )

    own_session = session is None
    if session is None:
        session = requests.Session()
        share_process_memory(session)  # what proxies asked for outlives this session
    try:
        key = generate_key()
        user_agent = _user_agent(session, user_agent_header, requests_kwargs.get("headers"))
        header_list = build_request_headers(
            origin=origin,
            extensions=factories,
            subprotocols=subprotocols,
            additional_headers=additional_headers,
            user_agent_header=None,
            key=key,
        )
        headers: dict[str, str | None] = {}
        for name, value in header_list:
            headers[name] = value if name not in headers else f"{headers[name]}, {value}"
        headers["User-Agent"] = user_agent
        upgraded = open_upgraded(
            session,
            uri,
            headers=headers,
            requests_kwargs=requests_kwargs,
            sock=sock,
            unix_path=unix_path,
            ssl=ssl,
            server_hostname=server_hostname,
            proxy=proxy,
            proxy_ssl=proxy_ssl,
            proxy_server_hostname=proxy_server_hostname,
            proxy_auth=proxy_auth,
            open_timeout=open_timeout,
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
        protocol = ClientProtocol(max_size=max_size, extensions=accepted)
        connection_class = create_connection or ClientConnection
        return connection_class(
            upgraded.sock,
            protocol,
            raw_socket=upgraded.raw_socket,
            leftover=upgraded.leftover,
            request=upgraded.request,
            response=upgraded.response,
            subprotocol=subprotocol,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_queue=max_queue,
            logger=logger,
        )
    except BaseException:
        try:
            upgraded.sock.close()
        finally:
            if upgraded.raw_socket is not upgraded.sock:
                upgraded.raw_socket.close()
        raise


def unix_connect(
    path: str | None = None,
    uri: str | None = None,
    **kwargs: Any,
) -> ClientConnection:
    """Connect over a Unix domain socket at ``path``, then speak WebSocket.

    ``uri`` defaults to ``ws://localhost/``, or ``wss://localhost/`` when
    ``ssl`` is given. Takes the keyword arguments of :func:`connect`; with
    ``sock=`` instead of ``path`` the socket is used as is.
    """
    if uri is None:
        uri = "wss://localhost/" if kwargs.get("ssl") is not None else "ws://localhost/"
    if path is None and kwargs.get("sock") is None:
        raise TypeError("unix_connect() needs a path (or sock=)")
    kwargs.setdefault("proxy", None)
    if path is not None:
        kwargs["unix_path"] = path
    return connect(uri, **kwargs)


def ws_connect(session: requests.Session, url: str, **kwargs: Any) -> ClientConnection:
    """Open a WebSocket connection through any :class:`requests.Session`.

    Everything the session holds applies to the handshake: proxies (and the
    environment's when ``trust_env``), auth, cookies, headers, ``verify``,
    ``cert`` and mounted adapters. Keyword arguments are those of
    :func:`connect`.
    """
    return connect(url, session=session, **kwargs)


class Session(requests.Session):
    """A :class:`requests.Session` that can also open WebSocket connections."""

    def ws_connect(self, url: str, **kwargs: Any) -> ClientConnection:
        """Open a WebSocket connection to ``url`` through this session.

        See :func:`requests_ws.ws_connect` and :func:`requests_ws.connect`.
        """
        return connect(url, session=self, **kwargs)
