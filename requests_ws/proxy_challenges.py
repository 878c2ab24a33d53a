"""Proxy challenges: :func:`parse_challenges` reads ``Proxy-Authenticate``
headers (RFC 7235: several challenges per header, a token68 or auth-params,
quoted strings with escapes) into :class:`Challenge` objects."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

__all__ = ["Challenge", "parse_challenges"]


@dataclasses.dataclass(frozen=True)
class Challenge:
    """One challenge of a ``Proxy-Authenticate`` header.

    ``scheme`` is spelled as the proxy spelled it (``name`` is lower case);
    ``token`` is the token68 (NTLM's and Negotiate's base64 blobs), ``params``
    the auth-params with lower-case names (Digest's realm, nonce...).
    """

    scheme: str
    token: str | None = None
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.scheme.lower()

    def describe(self) -> str:
        """The scheme, with Digest's algorithm: safe to log (no nonce, no token)."""
        if self.name == "digest":
            return f"{self.scheme} ({self.params.get('algorithm', 'MD5')})"
        return self.scheme


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})")
_TOKEN68_RE = re.compile(r"\s+([A-Za-z0-9\-._~+/]+=*)\s*(?:,|$)")
_PARAM_NAME_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*")
_PARAM_TOKEN_RE = re.compile(_TOKEN)


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``Proxy-Authenticate`` header values into challenges, in order.

    Malformed parts end the parse of their header; what was read before them
    is kept (proxies in the field are not always tidy).
    """
    challenges: list[Challenge] = []
    for value in values:
        challenges.extend(_parse_one_header(value))
    return challenges


def _parse_one_header(text: str) -> list[Challenge]:
    found: list[Challenge] = []
    position = 0
    length = len(text)
    while position < length:
        while position < length and text[position] in " \t,":
            position += 1
        if position >= length:
            break
        match = _SCHEME_RE.match(text, position)
        if match is None:
            break
        scheme = match.group(1)
        position = match.end()
        token68 = _TOKEN68_RE.match(text, position)
        if token68 is not None:
            found.append(Challenge(scheme, token=token68.group(1)))
            position = token68.end()
            continue
        params: dict[str, str] = {}
        while True:
            name_match = _PARAM_NAME_RE.match(text, position)
            if name_match is None or text.startswith("=", name_match.end()):
                break
            value, position = _read_param_value(text, name_match.end())
            if value is None:
                position = length
                break
            params[name_match.group(1).lower()] = value
            rest = re.compile(r"\s*,").match(text, position)
            if rest is None:
                break
            # A comma: another param of this challenge, or the next challenge.
            following = _PARAM_NAME_RE.match(text, rest.end())
            if following is None or text.startswith("=", following.end()):
                position = rest.end()
                break
            position = rest.end()
        found.append(Challenge(scheme, params=params))
    return found


def _read_param_value(text: str, position: int) -> tuple[str | None, int]:
    if text.startswith('"', position):
        chars: list[str] = []
        position += 1
        while position < len(text):
            char = text[position]
            if char == "\\" and position + 1 < len(text):
                chars.append(text[position + 1])
                position += 2
                continue
            if char == '"':
                return "".join(chars), position + 1
            chars.append(char)
            position += 1
        return None, position
    match = _PARAM_TOKEN_RE.match(text, position)
    if match is None:
        return None, position
    return match.group(0), match.end()
