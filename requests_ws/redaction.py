"""The one redaction rule: what of a URL or a header may appear in any output.

Every exception message, log record, ``repr`` and command-line line that shows
a URL or headers passes them through here first:

* :func:`redact_url` masks the password of the userinfo (``user:***@host``)
  and the values of query parameters that usually carry a secret
  (``token``, ``access_token``, ``api_key``, ``password``, ``signature``...);
* :func:`redact_headers` masks the values of ``Authorization``,
  ``Proxy-Authorization``, ``Cookie`` and ``Set-Cookie``, keeping what helps a
  reader (the auth scheme, the cookie names) and nothing that authenticates.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping

__all__ = ["MASK", "SECRET_HEADERS", "redact_url", "redact_headers", "redact_header"]

MASK = "***"

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

_SECRET_QUERY_NAME = re.compile(
    r"(?i)^(?:.*[_-])?(?:token|access[_-]?token|id[_-]?token|api[_-]?key|apikey|key|"
    r"password|passwd|pwd|secret|signature|sig|auth|jwt|session|sessionid|ticket|code)$"
)


def redact_url(url: str) -> str:
    """``url`` with its password and secret-looking query values masked.

    Anything that does not parse as a URL is returned with everything between
    ``://`` and the last ``@`` of its authority masked, so a malformed URL
    cannot leak a password either.
    """
    if not isinstance(url, str):
        url = str(url)
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return _redact_unparsed(url)
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{user}@{hostport}"
    query = parts.query
    if query:
        query = "&".join(_redact_query_item(item) for item in query.split("&"))
    if netloc == parts.netloc and query == parts.query:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_query_item(item: str) -> str:
    name, equals, _value = item.partition("=")
    if equals and _SECRET_QUERY_NAME.match(urllib.parse.unquote_plus(name)):
        return f"{name}={MASK}"
    return item


def _redact_unparsed(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = MASK + "@" + authority.rpartition("@")[2]
    return f"{scheme}{sep}{authority}{slash}{path}"


def redact_header(name: str, value: str) -> str:
    """The value of one header as it may be shown."""
    lowered = name.lower()
    if lowered not in SECRET_HEADERS:
        return value
    if lowered in ("authorization", "proxy-authorization"):
        scheme, space, _credentials = value.strip().partition(" ")
        return f"{scheme} {MASK}" if space else MASK
    if lowered == "cookie":
        names = [pair.partition("=")[0].strip() for pair in value.split(";") if pair.strip()]
        return "; ".join(f"{cookie}={MASK}" for cookie in names)
    cookie, _, attributes = value.partition(";")
    shown = f"{cookie.partition('=')[0].strip()}={MASK}"
    return f"{shown};{attributes}" if attributes else shown


def redact_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """A copy of ``headers`` with the credential headers' values masked.

    Repeated names (from a list of pairs) are joined with ``", "``, as in
    requests' case-insensitive headers.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    shown: dict[str, str] = {}
    for name, value in items:
        text = redact_header(str(name), str(value))
        shown[name] = f"{shown[name]}, {text}" if name in shown else text
    return shown
