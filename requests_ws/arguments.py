"""Checks of what the doors are given, all before any I/O.

This module owns the keyword check of every door (:func:`check_keywords`,
:func:`keyword_checked`: a misspelled keyword is a ``TypeError`` naming the
parameter it resembles, and ``timeout=`` gets a hint) and the header rules
(:func:`header_items`, :func:`check_header`: a CR, LF or NUL in a header
name or value, whatever its source, is a ``ValueError`` naming that source).
Messages never show a header's value when the header carries a credential.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from .redaction import redact_header

__all__ = [
    "check_keywords",
    "keyword_checked",
    "header_items",
    "check_header",
    "check_subprotocols",
]

_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FORBIDDEN = re.compile(r"[\r\n\x00]")

_TIMEOUT_HINT = (
    "there is no timeout= here: open_timeout= bounds the whole opening, and "
    "recv(timeout=) / send(timeout=) bound each call on the connection"
)

F = TypeVar("F", bound=Callable[..., Any])


def check_keywords(door: str, given: Iterable[str], allowed: Collection[str]) -> None:
    """Raise ``TypeError`` for a keyword of ``given`` that ``door`` does not take."""
    unknown = [name for name in given if name not in allowed]
    if not unknown:
        return
    name = unknown[0]
    if name == "timeout":
        raise TypeError(f"{door}() got an unexpected keyword argument 'timeout': {_TIMEOUT_HINT}")
    close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    others = f"; also unexpected: {', '.join(unknown[1:])}" if len(unknown) > 1 else ""
    raise TypeError(f"{door}() got an unexpected keyword argument {name!r}{hint}{others}")


def keyword_checked(function: F) -> F:
    """Give ``function`` the keyword check of :func:`check_keywords`.

    Python's own error for an unknown keyword names no close match before
    3.13; this one does, for every version. The signature seen by type
    checkers is unchanged, so they catch the misspelling first.
    """
    import inspect

    allowed = frozenset(
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    )

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_keywords(function.__name__, kwargs, allowed)
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _text(item: str | bytes, what: str) -> str:
    if isinstance(item, bytes):
        try:
            return item.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
            raise ValueError(f"{what} is not latin-1") from None
    if isinstance(item, str):
        return item
    raise TypeError(f"{what} must be str or bytes, not {type(item).__name__}")


def check_header(name: str | bytes, value: str | bytes, source: str) -> tuple[str, str]:
    """Check one header from ``source`` (an argument name); return it as text.

    Raises ``TypeError`` for a name or value that is neither str nor bytes,
    ``ValueError`` for a name that is not a token or a CR, LF or NUL anywhere.
    """
    text_name = _text(name, f"a header name in {source}")
    if not _TOKEN.fullmatch(text_name):
        raise ValueError(f"invalid header name {text_name!r} in {source}: it must be a token")
    text_value = _text(value, f"the value of header {text_name} in {source}")
    if _FORBIDDEN.search(text_value):
        shown = redact_header(text_name, text_value)
        raise ValueError(
            f"invalid value for header {text_name} in {source}: {shown!r} contains CR, LF or NUL"
        )
    return text_name, text_value


def header_items(
    headers: Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None, source: str
) -> list[tuple[str, str]]:
    """The (name, value) pairs of ``headers`` (a mapping or pairs), checked.

    A ``None`` value (requests' way to remove a session header) is kept out.
    """
    if headers is None:
        return []
    if isinstance(headers, (str, bytes)):
        raise TypeError(f"{source} must be a mapping or (name, value) pairs, not a string")
    items = headers.items() if isinstance(headers, Mapping) else headers
    checked = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(f"{source} must hold (name, value) pairs, got {item!r}") from None
        if value is None:
            continue
        checked.append(check_header(name, value, source))
    return checked


def check_subprotocols(subprotocols: Any) -> list[str] | None:
    """A list of subprotocol tokens; ``TypeError`` for a bare string."""
    if subprotocols is None:
        return None
    if isinstance(subprotocols, (str, bytes)):
        raise TypeError(
            f"subprotocols must be a sequence of str, not a single {type(subprotocols).__name__}:"
            f" write subprotocols=[{subprotocols!r}]"
        )
    result = []
    for subprotocol in subprotocols:
        if not isinstance(subprotocol, str):
            raise TypeError(f"subprotocols must hold str, got {type(subprotocol).__name__}")
        if not _TOKEN.fullmatch(subprotocol):
            raise ValueError(f"invalid subprotocol {subprotocol!r} in subprotocols: not a token")
        result.append(subprotocol)
    return result
