"""requests_ws: a synchronous WebSocket client that works wherever requests works.

Two doors lead to one connection object:

* the seed API, :func:`connect` / :func:`unix_connect` / :class:`ClientConnection`,
  with the names and defaults of ``websockets.sync.client``;
* the requests door, ``Session().ws_connect(url)`` / ``ws_connect(session, url)``,
  where the session's proxies, auth, cookies, headers and TLS settings apply.
"""

from __future__ import annotations

from .client import USER_AGENT, Session, connect, unix_connect, ws_connect
from .connection import ClientConnection
from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidHeader,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    OpenTimeout,
    PayloadTooBig,
    ProtocolError,
    ProxyError,
    TimeoutError,
    WebSocketException,
)
from .proxy_auth import Challenge, ProxyAuth
from .reconnect import reconnect
from .version import __version__

__all__ = [
    "connect",
    "unix_connect",
    "ClientConnection",
    "Session",
    "ws_connect",
    "reconnect",
    "ProxyAuth",
    "Challenge",
    "USER_AGENT",
    "__version__",
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidHandshake",
    "InvalidStatus",
    "InvalidHeader",
    "InvalidUpgrade",
    "NegotiationError",
    "ProxyError",
    "InvalidProxyStatus",
    "OpenTimeout",
    "ProtocolError",
    "PayloadTooBig",
    "ConcurrencyError",
    "TimeoutError",
]
