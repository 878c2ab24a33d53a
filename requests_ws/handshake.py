"""The opening handshake of RFC 6455 section 4, without I/O.

This module owns the key, the upgrade request headers, the parsing of the
``Sec-WebSocket-Extensions`` / ``-Protocol`` / ``Connection`` / ``Upgrade``
header grammars (RFC 7230 tokens, quoted strings, comma lists), and the
checks of the server's 101 answer, including extension and subprotocol
negotiation.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence

from .arguments import check_header, check_subprotocols, header_items
from .errors import (
    InvalidHeader,
    InvalidHeaderFormat,
    InvalidHeaderValue,
    InvalidUpgrade,
    NegotiationError,
)
from .extensions.base import ClientExtensionFactory, Extension, ExtensionParameter

__all__ = [
    "GUID",
    "generate_key",
    "accept_value",
    "build_request_headers",
    "check_response",
    "parse_extension_header",
    "serialize_extension_header",
    "parse_token_list",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_token_re = re.compile(_TOKEN)
_quoted_re = re.compile(_QUOTED)
_ows_re = re.compile(r"[ \t]*")


def generate_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value the server must answer ``key`` with."""
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def build_request_headers(
    *,
    key: str,
    origin: str | None = None,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    subprotocols: Sequence[str] | None = None,
    additional_headers: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]] | None = None,
    user_agent_header: str | None = None,
) -> list[tuple[str, str]]:
    """The WebSocket headers of the upgrade request, in order.

    ``Host`` is left to the HTTP layer. ``additional_headers`` come last; a
    name given there replaces the header built here (so a caller can, for
    example, send its own ``Origin``; names and values may be str or bytes).
    Raises :class:`ValueError`, naming the argument, for a header name that
    is not a token or a value containing CR, LF or NUL, and :class:`TypeError`
    for ``subprotocols`` given as a single string.
    """
    headers: list[tuple[str, str]] = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if origin is not None:
        headers.append(("Origin", origin))
    if extensions:
        offer = [(factory.name, factory.get_request_params()) for factory in extensions]
        headers.append(("Sec-WebSocket-Extensions", serialize_extension_header(offer)))
    if origin is not None:
        check_header("Origin", origin, "origin")
    checked_subprotocols = check_subprotocols(subprotocols)
    if checked_subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(checked_subprotocols)))
    if user_agent_header is not None:
        headers.append(check_header("User-Agent", user_agent_header, "user_agent_header"))
    extra = header_items(additional_headers, "additional_headers")
    if extra:
        replaced = {name.lower() for name, _ in extra}
        headers = [(name, value) for name, value in headers if name.lower() not in replaced]
        headers.extend(extra)
    return headers


def serialize_extension_header(
    extensions: Sequence[tuple[str, Sequence[ExtensionParameter]]],
) -> str:
    """Serialize ``[(name, [(param, value or None), ...]), ...]``."""
    parts = []
    for name, params in extensions:
        items = [name]
        for param, value in params:
            items.append(param if value is None else f"{param}={value}")
        parts.append("; ".join(items))
    return ", ".join(parts)


class _Parser:
    """A cursor over one header value, for the RFC 7230 list grammars."""

    def __init__(self, header: str, value: str) -> None:
        self.header = header
        self.value = value
        self.pos = 0

    def error(self, expected: str) -> InvalidHeader:
        return InvalidHeaderFormat(self.header, f"expected {expected}", self.value, self.pos)

    def skip_ows(self) -> None:
        match = _ows_re.match(self.value, self.pos)
        assert match is not None
        self.pos = match.end()

    def at_end(self) -> bool:
        return self.pos >= len(self.value)

    def peek(self) -> str:
        return self.value[self.pos] if self.pos < len(self.value) else ""

    def token(self) -> str:
        match = _token_re.match(self.value, self.pos)
        if match is None:
            raise self.error("a token")
        self.pos = match.end()
        return match.group()

    def token_or_quoted(self) -> str:
        if self.peek() == '"':
            match = _quoted_re.match(self.value, self.pos)
            if match is None:
                raise self.error("a closing quote")
            self.pos = match.end()
            return re.sub(r"\\(.)", r"\1", match.group()[1:-1])
        return self.token()

    def list_separator(self) -> bool:
        """Consume ``OWS , OWS`` (and empty elements); False at the end."""
        self.skip_ows()
        if self.at_end():
            return False
        if self.peek() != ",":
            raise self.error("a comma")
        while self.peek() == ",":
            self.pos += 1
            self.skip_ows()
        return not self.at_end()


def parse_token_list(header: str, value: str) -> list[str]:
    """Parse a comma-separated list of tokens (``Connection``, ``Upgrade``,
    ``Sec-WebSocket-Protocol``)."""
    if _token_re.fullmatch(value):
        return [value]  # one bare token (the usual answer): nothing to parse
    parser = _Parser(header, value)
    tokens: list[str] = []
    parser.skip_ows()
    while parser.peek() == ",":
        parser.pos += 1
        parser.skip_ows()
    while not parser.at_end():
        token = parser.token()
        # Upgrade allows protocol/version, e.g. "websocket/13".
        if header.lower() == "upgrade" and parser.peek() == "/":
            parser.pos += 1
            token += "/" + parser.token()
        tokens.append(token)
        if not parser.list_separator():
            break
    return tokens


def parse_extension_header(value: str) -> list[tuple[str, list[ExtensionParameter]]]:
    """Parse ``Sec-WebSocket-Extensions`` into ``[(name, [(param, value)])]``."""
    header = "Sec-WebSocket-Extensions"
    parser = _Parser(header, value)
    result: list[tuple[str, list[ExtensionParameter]]] = []
    parser.skip_ows()
    while parser.peek() == ",":
        parser.pos += 1
        parser.skip_ows()
    while not parser.at_end():
        name = parser.token()
        params: list[ExtensionParameter] = []
        parser.skip_ows()
        while parser.peek() == ";":
            parser.pos += 1
            parser.skip_ows()
            param = parser.token()
            parser.skip_ows()
            param_value: str | None = None
            if parser.peek() == "=":
                parser.pos += 1
                parser.skip_ows()
                param_value = parser.token_or_quoted()
                if not _token_re.fullmatch(param_value):
                    raise InvalidHeaderFormat(
                        header,
                        f"parameter {param} has a value that is not a token",
                        value,
                        parser.pos,
                    )
                parser.skip_ows()
            params.append((param, param_value))
        result.append((name, params))
        if not parser.list_separator():
            break
    return result


def check_response(
    headers: Mapping[str, str],
    *,
    key: str,
    extensions: Sequence[ClientExtensionFactory] | None = None,
    subprotocols: Sequence[str] | None = None,
) -> tuple[list[Extension], str | None]:
    """Check the headers of the server's 101 answer.

    ``headers`` is case-insensitive with repeated headers joined by ", "
    (as in ``requests``). Returns the accepted extensions, in the server's
    order, and the chosen subprotocol.

    Raises :class:`InvalidUpgrade` for a wrong ``Upgrade`` or ``Connection``,
    :class:`InvalidHeader` for a missing or wrong ``Sec-WebSocket-Accept``
    or a malformed header, :class:`NegotiationError` for an extension or
    subprotocol the client did not offer.
    """
    connection = headers.get("Connection")
    if connection is None:
        raise InvalidUpgrade("Connection", None, "the server must answer Connection: Upgrade")
    if not any(token.lower() == "upgrade" for token in parse_token_list("Connection", connection)):
        raise InvalidUpgrade("Connection", connection, "expected the token Upgrade")
    upgrade = headers.get("Upgrade")
    if upgrade is None:
        raise InvalidUpgrade("Upgrade", None, "the server must answer Upgrade: websocket")
    if [token.lower() for token in parse_token_list("Upgrade", upgrade)] != ["websocket"]:
        raise InvalidUpgrade("Upgrade", upgrade, "expected websocket")

    accept = headers.get("Sec-WebSocket-Accept")
    if accept is None:
        raise InvalidHeader(
            "Sec-WebSocket-Accept", None, "the server did not prove it speaks WebSocket"
        )
    expected = accept_value(key)
    if accept.strip() != expected:
        raise InvalidHeaderValue(
            "Sec-WebSocket-Accept", accept, f"expected {expected} for the key the client sent"
        )
    return _negotiate_extensions(headers, extensions), _negotiate_subprotocol(headers, subprotocols)


def _negotiate_extensions(
    headers: Mapping[str, str], factories: Sequence[ClientExtensionFactory] | None
) -> list[Extension]:
    value = headers.get("Sec-WebSocket-Extensions")
    if value is None or not value.strip():
        return []
    answer = parse_extension_header(value)
    if not factories:
        raise NegotiationError(f"the server accepted extensions the client did not offer: {value}")
    accepted: list[Extension] = []
    for name, params in answer:
        last_error: NegotiationError | None = None
        for factory in factories:
            if factory.name != name:
                continue
            try:
                extension = factory.process_response_params(params, accepted)
            except NegotiationError as exc:
                last_error = exc
                continue
            accepted.append(extension)
            break
        else:
            if last_error is not None:
                raise last_error
            offered = ", ".join(factory.name for factory in factories)
            raise NegotiationError(
                f"the server accepted extension {name!r}, which the client did not offer "
                f"(offered: {offered})"
            )
    return accepted


def _negotiate_subprotocol(
    headers: Mapping[str, str], subprotocols: Sequence[str] | None
) -> str | None:
    value = headers.get("Sec-WebSocket-Protocol")
    if value is None or not value.strip():
        return None
    chosen = parse_token_list("Sec-WebSocket-Protocol", value)
    if len(chosen) != 1:
        raise NegotiationError(
            f"the server chose several subprotocols ({value}); it must choose one"
        )
    if not subprotocols:
        raise NegotiationError(
            f"the server chose subprotocol {chosen[0]!r}, but the client offered none"
        )
    if chosen[0] not in subprotocols:
        raise NegotiationError(
            f"the server chose subprotocol {chosen[0]!r}, which the client did not offer "
            f"(offered: {', '.join(subprotocols)})"
        )
    return chosen[0]
