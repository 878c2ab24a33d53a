"""The errors of the sans-I/O core, with websockets 17's names and hierarchy.

This module owns every exception that frames, protocol, handshake and the
extensions raise, and the base classes the rest of the library builds on. It
imports nothing of requests, urllib3 or socket, so the core stays free of I/O;
:mod:`requests_ws.exceptions` re-exports all of these and adds the
requests-flavoured errors of the opening (proxy, status, timeout, network)::

    WebSocketException
        ConnectionClosed
            ConnectionClosedOK
            ConnectionClosedError
        InvalidURI                  (also ValueError)
        InvalidHandshake
            SecurityError
            InvalidHeader
                InvalidHeaderFormat
                InvalidHeaderValue
                InvalidUpgrade
            NegotiationError
                DuplicateParameter
                InvalidParameterName
                InvalidParameterValue
        ProtocolError
        PayloadTooBig
        InvalidState                (also AssertionError)
        ConcurrencyError            (also RuntimeError)

``TimeoutError`` is the builtin one, re-exported for code written against the
seed API (``from requests_ws import TimeoutError``).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .frames import Close

__all__ = [
    "WebSocketException",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidURI",
    "InvalidHandshake",
    "SecurityError",
    "InvalidHeader",
    "InvalidHeaderFormat",
    "InvalidHeaderValue",
    "InvalidUpgrade",
    "NegotiationError",
    "DuplicateParameter",
    "InvalidParameterName",
    "InvalidParameterValue",
    "ProtocolError",
    "PayloadTooBig",
    "InvalidState",
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
    """The URI is not a ``ws://`` or ``wss://`` URI that can be connected to.

    ``uri`` is the URI as given, with any password masked.
    """

    def __init__(self, uri: str, msg: str) -> None:
        self.uri = uri
        self.msg = msg
        super().__init__(uri, msg)

    def __str__(self) -> str:
        return f"{self.uri!r} isn't a valid WebSocket URI: {self.msg}"


class InvalidHandshake(WebSocketException):
    """The opening handshake failed."""


class SecurityError(InvalidHandshake):
    """A handshake response broke a security limit (a header or body too long)."""


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has a value the client cannot accept."""

    def __init__(self, name: str, value: str | None = None, explanation: str = "") -> None:
        self.name = name
        self.value = value
        self.explanation = explanation
        super().__init__(name, value)

    def __str__(self) -> str:
        return _describe(f"{self.name} header", self.value, self.explanation)


class InvalidHeaderFormat(InvalidHeader):
    """A header does not match its grammar; ``pos`` is where parsing stopped."""

    def __init__(self, name: str, error: str, header: str, pos: int) -> None:
        self.error = error
        self.header = header
        self.pos = pos
        super().__init__(name, header, f"{error} at position {pos}")


class InvalidHeaderValue(InvalidHeader):
    """A header is well formed but its value is not acceptable."""


class InvalidUpgrade(InvalidHeader):
    """The ``Upgrade`` or ``Connection`` header of the 101 response is wrong."""


class NegotiationError(InvalidHandshake):
    """The server chose an extension or subprotocol the client did not offer,
    or answered an offer with parameters the client cannot accept."""


class DuplicateParameter(NegotiationError):
    """An extension parameter appears twice in the server's answer."""

    def __init__(self, name: str, extension: str = "") -> None:
        self.name = name
        self.extension = extension
        super().__init__(name)

    def __str__(self) -> str:
        where = f" in the server's {self.extension} answer" if self.extension else ""
        return f"duplicate parameter{where}: {self.name}"


class InvalidParameterName(NegotiationError):
    """An extension parameter the client does not know."""

    def __init__(self, name: str, extension: str = "") -> None:
        self.name = name
        self.extension = extension
        super().__init__(name)

    def __str__(self) -> str:
        where = f" in the server's {self.extension} answer" if self.extension else ""
        return f"invalid parameter name{where}: {self.name}"


class InvalidParameterValue(NegotiationError):
    """An extension parameter with a missing or unacceptable value."""

    def __init__(self, name: str, value: str | None, explanation: str = "") -> None:
        self.name = name
        self.value = value
        self.explanation = explanation
        super().__init__(name, value)

    def __str__(self) -> str:
        return _describe(f"value for parameter {self.name}", self.value, self.explanation)


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


class InvalidState(WebSocketException, AssertionError):
    """The caller asked for something the connection's state forbids, such as
    sending a data frame after the close frame."""


class ConcurrencyError(WebSocketException, RuntimeError):
    """Two threads did at once what only one may do, such as calling ``recv``."""


def _describe(what: str, value: str | None, explanation: str) -> str:
    """ "missing X", "empty X" or "invalid X: value", and why."""
    if value is None:
        text = f"missing {what}"
    elif value == "":
        text = f"empty {what}"
    else:
        text = f"invalid {what}: {value}"
    if explanation:
        text += f" ({explanation})"
    return text
