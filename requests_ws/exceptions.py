"""The whole exception hierarchy of requests_ws, websockets 17's names included.

The sans-I/O core's errors live in :mod:`.errors` (which imports no
requests); this module re-exports them and adds the errors of the opening,
each of which is also the ``requests`` exception a ``requests`` user already
catches::

    WebSocketException
        InvalidProxy                (also requests.exceptions.InvalidProxyURL)
        InvalidHandshake
            ProxyError              (also requests.exceptions.ProxyError)
                InvalidProxyMessage
                InvalidProxyStatus  (.response, .status)
            InvalidMessage          (also requests.exceptions.ConnectionError)
            InvalidStatus           (also requests.exceptions.HTTPError)
        OpenTimeout                 (also TimeoutError, requests.exceptions.Timeout)
        ... and every class of :mod:`.errors`

Network failures are raised as :func:`network_error` builds them: the
requests exception (``ConnectionError``, ``SSLError``) that is also the
built-in one the socket raised (``ConnectionRefusedError``,
``socket.gaierror``, ``ssl.SSLCertVerificationError``...), so code written for
either keeps working. No message here shows a password or a credential
header: URLs pass through :func:`.redaction.redact_url`.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import requests

from .errors import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    DuplicateParameter,
    InvalidHandshake,
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidParameterName,
    InvalidParameterValue,
    InvalidState,
    InvalidUpgrade,
    InvalidURI,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    SecurityError,
    TimeoutError,
    WebSocketException,
)
from .redaction import redact_url

__all__ = [
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
    "network_error",
    "also_builtin",
    "ws_url",
]

_BODY_PREVIEW = 200


def ws_url(url: str) -> str:
    """The ``ws(s)://`` form of an ``http(s)://`` URL, credentials masked."""
    lowered = url[:6].lower()
    if lowered.startswith("https:"):
        url = "wss:" + url[6:]
    elif lowered.startswith("http:"):
        url = "ws:" + url[5:]
    return redact_url(url)


class InvalidProxy(WebSocketException, requests.exceptions.InvalidProxyURL):
    """The proxy URL cannot be used (scheme, host, port); ``proxy`` is masked."""

    def __init__(self, proxy: str, msg: str) -> None:
        self.proxy = redact_url(proxy)
        self.msg = msg
        requests.exceptions.InvalidProxyURL.__init__(
            self, f"{self.proxy} isn't a valid proxy: {msg}"
        )

    def __str__(self) -> str:
        return f"{self.proxy} isn't a valid proxy: {self.msg}"


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
        self.proxy = None if proxy is None else redact_url(proxy)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class InvalidProxyMessage(ProxyError):
    """The proxy's answer to CONNECT is malformed or truncated."""


class InvalidProxyStatus(ProxyError):
    """The proxy answered CONNECT with a status other than 2xx.

    ``response`` is a :class:`requests.Response` holding the proxy's status,
    reason, headers and the first bytes of its body; ``status`` and
    ``reason`` repeat them.
    """

    def __init__(
        self,
        response: requests.Response,
        message: str | None = None,
        *,
        proxy: str | None = None,
    ) -> None:
        if message is None:
            shown = f" {redact_url(proxy)}" if proxy else ""
            message = f"proxy{shown} rejected the connection: HTTP {response.status_code}"
            if response.reason:
                message += f" {response.reason}"
        super().__init__(
            message,
            proxy=proxy,
            status=response.status_code,
            reason=response.reason,
            response=response,
        )


class InvalidMessage(InvalidHandshake, requests.exceptions.ConnectionError):
    """The handshake response is malformed or truncated (not HTTP, cut short)."""

    def __init__(self, message: str) -> None:
        requests.exceptions.ConnectionError.__init__(self, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _challenge_schemes(value: str) -> list[str]:
    """The auth schemes of a ``WWW-Authenticate``/``Proxy-Authenticate`` value."""
    schemes: list[str] = []
    for piece in value.split(","):
        match = re.match(r"\s*([-!#$%&'*+.^_`|~0-9A-Za-z]+)(?:\s|$)", piece)
        if match and "=" not in match.group(1) and match.group(1) not in schemes:
            schemes.append(match.group(1))
    return schemes


class InvalidStatus(InvalidHandshake, requests.exceptions.HTTPError):
    """The server answered the upgrade with a status other than 101.

    ``response`` is the :class:`requests.Response`; its body has been read
    (bounded) so that ``response.text`` tells what the server said. The
    message names the ``ws(s)://`` URI (credentials masked), the status, the
    schemes a 401/407 asks for, and the first bytes of the body.
    """

    def __init__(self, response: requests.Response) -> None:
        requests.exceptions.HTTPError.__init__(self, response=response, request=response.request)
        self.response: requests.Response = response

    @property
    def status(self) -> int:
        """The HTTP status code the server answered."""
        return int(self.response.status_code)

    def __str__(self) -> str:
        response = self.response
        text = (
            f"server rejected WebSocket connection to {ws_url(str(response.url))}: "
            f"HTTP {response.status_code} {response.reason or ''}"
        ).rstrip()
        challenge_header = {401: "WWW-Authenticate", 407: "Proxy-Authenticate"}.get(
            response.status_code
        )
        if challenge_header is not None:
            schemes = _challenge_schemes(response.headers.get(challenge_header, ""))
            if schemes:
                text += f"; it asks for authentication: {', '.join(schemes)}"
                if response.status_code == 401:
                    sent = response.request is not None and "Authorization" in (
                        response.request.headers
                    )
                    text += " (the credentials sent were refused)" if sent else " (pass auth=)"
            else:
                text += f"; no {challenge_header} header"
        body = response._content if isinstance(response._content, bytes) else b""
        if body:
            preview = body[:_BODY_PREVIEW]
            more = "..." if len(body) > _BODY_PREVIEW else ""
            text += f"; body: {preview!r}{more}"
        return text


class OpenTimeout(WebSocketException, TimeoutError, requests.exceptions.Timeout):
    """``open_timeout`` expired before the connection was open."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        requests.exceptions.Timeout.__init__(self, message, **kwargs)
        self.message = message

    def __str__(self) -> str:
        return self.message


_NETWORK_CLASSES: dict[tuple[type[BaseException], type[BaseException]], type[BaseException]] = {}

_E = TypeVar("_E", bound=BaseException)


def _network_class(kind: type[BaseException], builtin: type[OSError]) -> type[BaseException]:
    key = (kind, builtin)
    cls = _NETWORK_CLASSES.get(key)
    if cls is None:

        def __str__(self: Any) -> str:
            return str(self.message)

        namespace = {"__str__": __str__, "__module__": __name__, "__doc__": kind.__doc__}
        try:
            cls = type(f"{kind.__name__}[{builtin.__name__}]", (kind, builtin), namespace)
        except TypeError:  # an incompatible layout: keep the class alone
            cls = kind
        _NETWORK_CLASSES[key] = cls
    return cls


def also_builtin(error: _E, cause: BaseException) -> _E:
    """``error`` (an OSError-based requests or requests_ws exception) made
    also an instance of the built-in class of ``cause``
    (``ConnectionRefusedError``, ``socket.gaierror``,
    ``ssl.SSLCertVerificationError``...), carrying ``errno`` and ``strerror``
    of ``cause``. Raise it ``from cause``."""
    builtin = type(cause)
    if (
        not isinstance(error, OSError)
        or not issubclass(builtin, OSError)
        or issubclass(builtin, requests.exceptions.RequestException)
        or isinstance(error, builtin)
    ):
        return error
    if not hasattr(error, "message"):
        error.message = str(error)  # type: ignore[attr-defined]
    cls = _network_class(type(error), builtin)
    if cls is type(error):
        return error
    assert isinstance(cause, OSError)
    error.__class__ = cls  # type: ignore[assignment]  # same OSError layout: a subclass
    error.errno = cause.errno
    error.strerror = cause.strerror
    for name in ("verify_code", "verify_message", "reason", "library"):
        if hasattr(cause, name) and not hasattr(error, name):
            try:
                setattr(error, name, getattr(cause, name))
            except AttributeError:
                pass
    return error


def network_error(
    kind: type[requests.exceptions.RequestException],
    message: str,
    cause: BaseException,
) -> requests.exceptions.RequestException:
    """``kind(message)`` (a requests exception) that is also the built-in
    class of ``cause``: see :func:`also_builtin`. Raise it ``from cause``."""
    error = kind(message)
    error.message = message  # type: ignore[attr-defined]
    return also_builtin(error, cause)
