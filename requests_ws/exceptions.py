"""The exception hierarchy of requests_ws.

Every error is a :class:`WebSocketException`; the ones raised while opening a
connection are also the ``requests`` exception a ``requests`` user already
catches (see the table in the README)::

    WebSocketException
        ConnectionClosed
            ConnectionClosedOK
            ConnectionClosedError
        InvalidURI                  (also ValueError)
        InvalidHandshake
            InvalidStatus           (also requests.exceptions.HTTPError)
            InvalidHeader
                InvalidUpgrade
            NegotiationError
            ProxyError              (also requests.exceptions.ProxyError)
                InvalidProxyStatus
        OpenTimeout                 (also TimeoutError, requests.exceptions.Timeout)
        ProtocolError
        PayloadTooBig
        ConcurrencyError            (also RuntimeError)

``TimeoutError`` is the builtin one, re-exported for code written against the
seed API (``from requests_ws import TimeoutError``).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from .frames import Close

__all__ = [
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

TimeoutError = builtins.TimeoutError


class WebSocketException(Exception):
    """Base class of every exception raised by requests_ws."""


class ConnectionClosed(WebSocketException):
    """Raised when using a connection that is closed or closing.

    ``rcvd`` is the close frame received from the server and ``sent`` the one
    the client sent, each ``None`` when there was none (for example when TCP
    dropped). ``rcvd_then_sent`` tells which came first when there are both.
    """

    def __init__(
        self,
        rcvd: Close | None,
        sent: Close | None,
        rcvd_then_sent: bool | None = None,
    ) -> None:
        self.rcvd = rcvd
        self.sent = sent
        self.rcvd_then_sent = rcvd_then_sent
        super().__init__(rcvd, sent, rcvd_then_sent)

    def __str__(self) -> str:
        if self.rcvd is None:
            if self.sent is None:
                return "no close frame received or sent"
            return f"sent {self.sent}; no close frame received"
        if self.sent is None:
            return f"received {self.rcvd}; no close frame sent"
        if self.rcvd_then_sent:
            return f"received {self.rcvd}; then sent {self.sent}"
        return f"sent {self.sent}; then received {self.rcvd}"

    @property
    def code(self) -> int:
        """The close code received, or 1006 (abnormal closure) when none was."""
        return 1006 if self.rcvd is None else self.rcvd.code

    @property
    def reason(self) -> str:
        """The close reason received, or an empty string."""
        return "" if self.rcvd is None else self.rcvd.reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection ended with a normal closure (1000 or 1001 both ways)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection ended in error: a protocol violation, a drop, a timeout."""


class InvalidURI(WebSocketException, ValueError):
    """The URI is not a ``ws://`` or ``wss://`` URI that can be connected to."""

    def __init__(self, uri: str, msg: str) -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(uri, msg)

    def __str__(self) -> str:
        return f"{self.uri!r} isn't a valid WebSocket URI: {self.msg}"


class InvalidHandshake(WebSocketException):
    """The opening handshake failed."""


class InvalidStatus(InvalidHandshake, requests.exceptions.HTTPError):
    """The server answered the upgrade with a status other than 101.

    ``response`` is the :class:`requests.Response`; its body has been read so
    that ``response.text`` tells what the server said.
    """

    def __init__(self, response: requests.Response) -> None:
        requests.exceptions.HTTPError.__init__(self, response=response, request=response.request)
        self.response: requests.Response = response

    def __str__(self) -> str:
        reason = self.response.reason or ""
        return (
            f"server rejected WebSocket connection to {self.response.url}: "
            f"HTTP {self.response.status_code} {reason}".rstrip()
        )


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has a value the client cannot accept."""

    def __init__(self, name: str, value: str | None = None, explanation: str = "") -> None:
        self.name = name
        self.value = value
        self.explanation = explanation
        super().__init__(name, value)

    def __str__(self) -> str:
        if self.value is None:
            text = f"missing {self.name} header"
        elif self.value == "":
            text = f"empty {self.name} header"
        else:
            text = f"invalid {self.name} header: {self.value}"
        if self.explanation:
            text += f" ({self.explanation})"
        return text


class InvalidUpgrade(InvalidHeader):
    """The ``Upgrade`` or ``Connection`` header of the 101 response is wrong."""


class NegotiationError(InvalidHandshake):
    """The server chose an extension or subprotocol the client did not offer,
    or answered an offer with parameters the client cannot accept."""


class ProxyError(InvalidHandshake, requests.exceptions.ProxyError):
    """The proxy refused the tunnel, or failed while setting it up.

    ``proxy`` is the proxy URL without credentials; ``status`` and ``reason``
    are the proxy's HTTP answer to CONNECT (``None`` for SOCKS and I/O errors).
    """

    def __init__(
        self,
        message: str,
        *,
        proxy: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        response: requests.Response | None = None,
    ) -> None:
        requests.exceptions.ProxyError.__init__(self, message, response=response)
        self.message = message
        self.proxy = proxy
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class InvalidProxyStatus(ProxyError):
    """The proxy answered CONNECT with a status other than 2xx (``status``,
    ``reason``): for example 407 when it rejected the credentials."""


class OpenTimeout(WebSocketException, TimeoutError, requests.exceptions.Timeout):
    """``open_timeout`` expired before the connection was open."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        requests.exceptions.Timeout.__init__(self, message, **kwargs)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProtocolError(WebSocketException):
    """The peer, or the caller, broke a rule of the WebSocket protocol."""


class PayloadTooBig(WebSocketException):
    """A received message exceeds ``max_size``."""

    def __init__(self, size: int | None, max_size: int, current_size: int = 0) -> None:
        self.size = size
        self.max_size = max_size
        self.current_size = current_size
        super().__init__(size, max_size, current_size)

    def __str__(self) -> str:
        if self.size is None:
            return f"message exceeds the limit of {self.max_size} bytes (max_size)"
        return (
            f"message of {self.current_size + self.size} bytes or more exceeds "
            f"the limit of {self.max_size} bytes (max_size)"
        )


class ConcurrencyError(WebSocketException, RuntimeError):
    """Two threads did at once what only one may do, such as calling ``recv``."""
