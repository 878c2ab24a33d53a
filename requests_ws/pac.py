"""PAC files through ``pypac.PACSession``: which proxies its PAC file lists
for a URL, and telling it of a proxy that could not be reached.

Duck-typed, so pypac stays an optional dependency: a session is a PAC session
when it has pypac's ``get_pac()``, ``pac_enabled`` and ``_proxy_resolver``
(pypac's own ``request()`` reads the same resolver). The list keeps the PAC
file's order: ``PROXY``/``HTTPS``/``SOCKS`` entries become proxy URLs,
``DIRECT`` becomes ``None``; :mod:`.routes` fails over along it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .exceptions import ProxyError

if TYPE_CHECKING:
    from .routes import Proxy

__all__ = ["proxies_for", "banning"]


def _resolver(session: Any) -> Any:
    if not getattr(session, "pac_enabled", False) or not hasattr(session, "get_pac"):
        return None
    session.get_pac()  # finds and parses the PAC file once, as pypac's request() does
    return getattr(session, "_proxy_resolver", None)


def proxies_for(session: Any, url: str) -> list[str | None] | None:
    """The PAC file's proxies for ``url`` in order (``None``: DIRECT), skipping
    those pypac has banned; ``None`` when ``session`` uses no PAC file."""
    resolver = _resolver(session)
    if resolver is None:
        return None
    listed = list(resolver.get_proxies(url))
    banned: set[str] = getattr(resolver, "_offline_proxies", set())
    if listed and all(entry in banned for entry in listed):
        resolver.unban_all()  # as pypac does once everything has failed: try them all again
        banned = set()
    if not listed:
        raise ProxyError(f"the PAC file lists no proxy (and no DIRECT) for {url}")
    candidates: list[str | None] = [
        None if entry == "DIRECT" else str(entry) for entry in listed if entry not in banned
    ]
    return candidates


def banning(session: Any) -> Callable[[Proxy], None]:
    """A callback that tells ``session``'s PAC resolver a proxy is down."""

    def ban(proxy: Proxy) -> None:
        resolver = getattr(session, "_proxy_resolver", None)
        if resolver is not None and proxy.given_url is not None:
            resolver.ban_proxy(proxy.given_url)

    return ban
