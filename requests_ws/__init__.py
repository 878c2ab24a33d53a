"""requests_ws: a synchronous WebSocket client that works wherever requests works.

Two doors lead to one connection object:

* the seed API, :func:`connect` / :func:`unix_connect` / :class:`ClientConnection`,
  with the names and defaults of ``websockets.sync.client``;
* the requests door, ``Session().ws_connect(url)`` / ``ws_connect(session, url)``,
  where the session's proxies, auth, cookies, headers and TLS settings apply.

Names are imported lazily (module ``__getattr__``): ``import requests_ws.protocol``
loads the sans-I/O core alone, without requests, urllib3 or socket, while
``from requests_ws import connect`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .client import USER_AGENT, Session, connect, unix_connect, ws_connect
    from .connection import ClientConnection
    from .exceptions import (
        ConcurrencyError,
        ConnectionClosed,
        ConnectionClosedError,
        ConnectionClosedOK,
        DuplicateParameter,
        InvalidHandshake,
        InvalidHeader,
        InvalidHeaderFormat,
        InvalidHeaderValue,
        InvalidMessage,
        InvalidParameterName,
        InvalidParameterValue,
        InvalidProxy,
        InvalidProxyMessage,
        InvalidProxyStatus,
        InvalidState,
        InvalidStatus,
        InvalidUpgrade,
        InvalidURI,
        NegotiationError,
        OpenTimeout,
        PayloadTooBig,
        ProtocolError,
        ProxyError,
        SecurityError,
        TimeoutError,
        WebSocketException,
    )
    from .proxy_auth import Challenge, ProxyAuth
    from .reconnecting import reconnect, unix_reconnect

__all__ = [
    "connect",
    "unix_connect",
    "ClientConnection",
    "Session",
    "ws_connect",
    "reconnect",
    "unix_reconnect",
    "ProxyAuth",
    "Challenge",
    "USER_AGENT",
    "__version__",
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidProxy",
    "InvalidHandshake",
    "SecurityError",
    "ProxyError",
    "InvalidProxyMessage",
    "InvalidProxyStatus",
    "InvalidMessage",
    "InvalidStatus",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidUpgrade",
    "NegotiationError",
    "DuplicateParameter",
    "InvalidParameterName",
    "InvalidParameterValue",
    "OpenTimeout",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidState",
    "ConcurrencyError",
    "TimeoutError",
]

_LAZY: dict[str, str] = {
    "connect": ".client",
    "unix_connect": ".client",
    "Session": ".client",
    "ws_connect": ".client",
    "USER_AGENT": ".client",
    "ClientConnection": ".connection",
    "reconnect": ".reconnecting",
    "unix_reconnect": ".reconnecting",
    "ProxyAuth": ".proxy_auth",
    "Challenge": ".proxy_auth",
}
_LAZY.update(
    (name, ".exceptions") for name in __all__ if name not in _LAZY and name != "__version__"
)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
