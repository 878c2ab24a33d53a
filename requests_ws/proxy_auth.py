"""Proxy authentication for the CONNECT tunnel.

This module owns what the client says to a proxy's ``407`` (the challenges
are parsed by :mod:`.proxy_challenges`, the schemes answered by
:mod:`.proxy_schemes`):

* the choice of the strongest scheme offered (Negotiate, NTLM, Digest,
  Basic), never a credential before the proxy has named its schemes;
* :class:`AuthMemory`, what each proxy asked for, so that later tunnels
  through it answer at once (Basic or Negotiate in the first request, Digest
  with the last nonce, NTLM in its two legs); one per session, one for the
  process (``connect()`` without a session);
* the logged-in user's credentials (Negotiate) when the proxy URL has none;
* :class:`TunnelAuth`, the state of one tunnel's exchange, which
  :mod:`.routes` drives round by round.

Every ``Proxy-Authorization`` value is logged masked, on the
``requests_ws.proxy`` logger at DEBUG.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidProxyStatus, ProxyError
from .proxy_challenges import Challenge, parse_challenges
from .proxy_schemes import (
    DIGEST_ALGORITHMS,
    NEGOTIATE_EXTRA,
    Basic,
    Digest,
    DigestState,
    Hooked,
    ProxyAuth,
    Remembered,
    Scheme,
    SchemeFailed,
    Spnego,
    digest_usable,
    mask,
    spnego_available,
)

if TYPE_CHECKING:
    import requests

__all__ = [
    "Challenge",
    "parse_challenges",
    "ProxyAuth",
    "AuthMemory",
    "memory_for",
    "process_memory",
    "share_process_memory",
    "TunnelAuth",
    "logger",
]

logger = logging.getLogger("requests_ws.proxy")

# Strongest first; Digest's own algorithms are ranked in DIGEST_ALGORITHMS.
_STRENGTH = {"negotiate": 4, "ntlm": 3, "digest": 2, "basic": 1}
_LABELS = {"ntlm": "NTLM", "negotiate": "Negotiate"}
# At most this many CONNECT requests for one tunnel, whatever the proxy says.
MAX_ROUNDS = 8


# -- memory --------------------------------------------------------------------------


class AuthMemory:
    """What each proxy (by URL and user) last asked for; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str | None], Remembered] = {}

    def get(self, proxy_url: str, username: str | None) -> Remembered | None:
        with self._lock:
            entry = self._entries.get((proxy_url, username))
            return dataclasses.replace(entry) if entry is not None else None

    def remember(self, proxy_url: str, username: str | None, entry: Remembered) -> None:
        with self._lock:
            self._entries[(proxy_url, username)] = entry

    def forget(self, proxy_url: str, username: str | None) -> None:
        with self._lock:
            self._entries.pop((proxy_url, username), None)

    def next_digest_count(self, digest: DigestState) -> int:
        """The next nonce count for ``digest``'s nonce, shared by all tunnels."""
        with self._lock:
            digest.count += 1
            return digest.count

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_process_memory = AuthMemory()
_session_memories: weakref.WeakKeyDictionary[Any, AuthMemory] = weakref.WeakKeyDictionary()
_memories_lock = threading.Lock()


def memory_for(session: Any) -> AuthMemory:
    """The memory of ``session`` (a requests.Session), made on first use."""
    with _memories_lock:
        memory = _session_memories.get(session)
        if memory is None:
            memory = _session_memories[session] = AuthMemory()
        return memory


def process_memory() -> AuthMemory:
    """The memory of tunnels opened without a session of the caller's."""
    return _process_memory


def share_process_memory(session: Any) -> None:
    """Make ``session`` (one made by ``connect()`` for itself) use the process's memory."""
    with _memories_lock:
        _session_memories[session] = _process_memory


# -- one tunnel's exchange ---------------------------------------------------------


class TunnelAuth:
    """The authentication state of one CONNECT tunnel, over one or more
    connections to the proxy.

    :mod:`.routes` asks :meth:`first_header` for each new connection's first
    request, hands each 407's challenges to :meth:`answer`, tells
    :meth:`connection_closed` when the proxy closed after a 407, and
    :meth:`succeeded` on 2xx.
    """

    def __init__(
        self,
        *,
        proxy_url: str,
        proxy_host: str,
        username: str | None,
        password: str | None,
        target: str,
        memory: AuthMemory,
        hook: ProxyAuth | None = None,
    ) -> None:
        self.proxy_url = proxy_url
        self.proxy_host = proxy_host
        self.username = username
        self.password = password
        self.target = target
        self.memory = memory
        self.hook = hook
        self.scheme: Scheme | None = None
        self.offered: list[Challenge] = []
        self.from_memory = False
        self.pending: str | None = None  # to send first on the next connection
        self.rounds = 0
        self.failed: list[Scheme] = []  # rejected or failed, in the order tried
        self.failure: ProxyError | None = None  # why a scheme could not even answer
        self.needs_new_connection = False  # set by answer(): send it on a new connection
        self.response: requests.Response | None = None  # the last 407, for errors

    # What routes.py calls -------------------------------------------------------

    def first_header(self) -> str | None:
        """The ``Proxy-Authorization`` of a new connection's first CONNECT."""
        self.rounds += 1
        if self.pending is not None:
            header, self.pending = self.pending, None
            return header  # logged when answer() made it
        if self.scheme is None:
            remembered = self.memory.get(self.proxy_url, self.username)
            if remembered is None:
                return None  # nothing goes out before the proxy names its schemes
            scheme = self._remembered_scheme(remembered)
            if scheme is None:
                return None
            self.scheme = scheme
            self.from_memory = True
            logger.debug(
                "proxy %s asked for %s before: answering at once", self.proxy_url, scheme.name
            )
        elif isinstance(self.scheme, Spnego):
            self.scheme.restart()
        try:
            return self._log_maybe(self.scheme.first())
        except SchemeFailed as exc:
            if not self.from_memory:
                raise
            # The remembered scheme cannot answer now (no ticket): ask the proxy.
            logger.debug("proxy %s: %s", self.proxy_url, exc)
            self.memory.forget(self.proxy_url, self.username)
            self.scheme = None
            self.from_memory = False
            return None

    def answer(self, challenges: list[Challenge], response: requests.Response) -> str:
        """The ``Proxy-Authorization`` answering a 407 (``response``, the
        proxy's answer as routes.connect_answer builds it); raises
        :class:`InvalidProxyStatus` carrying ``response`` when there is none."""
        self.response = response
        status_line = f"{response.status_code} {response.reason or ''}".rstrip()
        self.rounds += 1
        if self.rounds > MAX_ROUNDS:
            raise self._rejected(status_line, f"gave up after {MAX_ROUNDS} rounds")
        for challenge in challenges:  # everything offered in any round, for errors
            if all(c.describe() != challenge.describe() for c in self.offered):
                self.offered.append(challenge)
        logger.debug(
            "proxy %s offers: %s",
            self.proxy_url,
            ", ".join(c.describe() for c in challenges) or "(no Proxy-Authenticate)",
        )
        if self.scheme is not None:
            mine = [c for c in challenges if c.name == self.scheme.name]
            header = self._respond(self.scheme, mine) if mine else None
            if header is not None:
                return self._log(header)
            # Rejected (remembered or not: the same credentials would fail
            # again): the next weaker scheme offered, if any.
            self.memory.forget(self.proxy_url, self.username)
            self.failed.append(self.scheme)
            self.scheme = None
            self.from_memory = False
        while True:
            chosen = self._choose(challenges, status_line)
            self.scheme = chosen
            mine = [c for c in challenges if c.name == chosen.name]
            header = self._respond(chosen, mine)
            if header is not None:
                # After a rejected scheme, the next one starts on a new connection:
                # proxies tie a connection to the scheme it began with.
                self.needs_new_connection = bool(self.failed)
                return self._log(header)
            self.failed.append(chosen)

    def _respond(self, scheme: Scheme, challenges: list[Challenge]) -> str | None:
        """The scheme's answer; None when it failed (the failure kept for the error)."""
        try:
            return scheme.respond(self._best(challenges))
        except SchemeFailed as exc:
            self.failure = exc
            return None

    def connection_closed(self, header: str) -> None:
        """The proxy closed after the 407 that ``header`` answers (or
        :attr:`needs_new_connection` asked for a new connection)."""
        if self.needs_new_connection:
            self.needs_new_connection = False
            self.pending = header  # the new scheme's first leg
            return
        if self.scheme is not None and self.scheme.bound:
            if isinstance(self.scheme, Spnego) and self.scheme.legs > 1:
                raise ProxyError(
                    f"proxy {self.proxy_url} closed the connection in the middle of "
                    f"{self.scheme.label} authentication, which must complete on one "
                    "connection",
                    proxy=self.proxy_url,
                    status=407,
                )
            self.pending = None  # a fresh context's first leg on the new connection
            return
        self.pending = header

    def succeeded(self) -> None:
        if self.scheme is not None:
            self.memory.remember(self.proxy_url, self.username, self.scheme.remembered())

    # Choosing ----------------------------------------------------------------------

    def _remembered_scheme(self, remembered: Remembered) -> Scheme | None:
        name = remembered.scheme
        if self.hook is not None and name == self.hook.scheme.lower():
            return Hooked(self.hook, self.proxy_url, self.target)
        if name in ("negotiate", "ntlm"):
            return self._spnego(name)
        if self.username is None:
            return None
        if name == "basic":
            return Basic(self.username, self.password or "")
        if name == "digest" and remembered.digest is not None:
            return Digest(
                self.username,
                self.password or "",
                self.target,
                self.memory.next_digest_count,
                remembered.digest,
            )
        return None

    def _spnego(self, name: str) -> Spnego:
        label = "Negotiate" if name == "negotiate" else "NTLM"
        # pyspnego takes DOMAIN\\user and user@REALM as they are.
        return Spnego(name, label, self.username, self.password, self.proxy_host, self.proxy_url)

    def _choose(self, challenges: list[Challenge], status_line: str) -> Scheme:
        """The strongest scheme offered that can be answered and has not failed."""
        names = {c.name for c in challenges}
        failed = {scheme.name for scheme in self.failed}
        if self.hook is not None and self.hook.scheme.lower() in names - failed:
            return Hooked(self.hook, self.proxy_url, self.target)
        known = sorted(
            (n for n in names - failed if n in _STRENGTH),
            key=lambda n: _STRENGTH[n],
            reverse=True,
        )
        have_spnego = spnego_available()
        for name in known:
            if name in ("negotiate", "ntlm"):
                if not have_spnego:
                    continue
                if name == "ntlm" and self.username is None:
                    continue  # NTLM needs an account; Negotiate may use the ticket cache
                return self._spnego(name)
            if self.username is None:
                continue
            if name == "digest":
                usable = [c for c in challenges if c.name == "digest" and digest_usable(c)]
                if usable:
                    return Digest(
                        self.username,
                        self.password or "",
                        self.target,
                        self.memory.next_digest_count,
                    )
                continue
            if name == "basic" and not names & {"digest", "ntlm", "negotiate"}:
                # Never a password in the clear to a proxy that takes better.
                return Basic(self.username, self.password or "")
        if self.failure is not None and not any(
            isinstance(scheme, (Basic, Digest)) for scheme in self.failed
        ):
            # The proxy's 407 stands: an InvalidProxyStatus with its answer,
            # saying why the scheme could not answer and what was offered.
            message = f"{self.failure.message}; it offered: {self._offered_text()}"
            raise self._status_error(message) from self.failure
        if self.failed:
            raise self._rejected(status_line)
        raise self._cannot(status_line, names, have_spnego)

    @staticmethod
    def _best(challenges: list[Challenge]) -> Challenge:
        def rank(challenge: Challenge) -> int:
            algorithm = challenge.params.get("algorithm", "MD5").upper()
            return DIGEST_ALGORITHMS.get(algorithm, (0, None))[0]

        return max(challenges, key=rank)

    # Errors and logs ---------------------------------------------------------------

    def _offered_text(self) -> str:
        return ", ".join(c.describe() for c in self.offered) or "nothing"

    def _rejected(self, status_line: str, why: str = "") -> InvalidProxyStatus:
        tried = self.failed or ([self.scheme] if self.scheme is not None else [])
        labels = ", ".join(_LABELS.get(s.name, s.name.capitalize()) for s in tried) or "none"
        who = "the logged-in user" if self.username is None else f"user {self.username!r}"
        message = (
            f"proxy {self.proxy_url} refused CONNECT to {self.target}: {status_line} "
            f"(the proxy rejected the credentials of {who}; tried: {labels}"
            f"{'; ' + why if why else ''}); it offered: {self._offered_text()}"
        )
        return self._status_error(message)

    def _cannot(self, status_line: str, names: set[str], have_spnego: bool) -> ProxyError:
        offered = self._offered_text()
        if names & {"negotiate", "ntlm"} and not have_spnego:
            message = (
                f"proxy {self.proxy_url} requires authentication ({offered}): "
                f"Negotiate and NTLM need pyspnego: pip install '{NEGOTIATE_EXTRA}'"
            )
            return self._status_error(message)
        if self.username is None:
            scheme = self.proxy_url.split("://", 1)[0]
            host_port = self.proxy_url.split("://", 1)[1]
            message = (
                f"proxy {self.proxy_url} refused CONNECT to {self.target}: {status_line} "
                "(the proxy requires authentication: put user:password in the proxy URL, "
                f"e.g. {scheme}://user:password@{host_port}); it asked for: {offered}"
            )
            return self._status_error(message)
        message = (
            f"proxy {self.proxy_url} refused CONNECT to {self.target}: {status_line} "
            f"(no scheme it offers can be answered safely: {offered}; requests_ws "
            "answers Negotiate, NTLM, Digest and, only when nothing better is offered, Basic)"
        )
        return self._status_error(message)

    def _status_error(self, message: str) -> InvalidProxyStatus:
        """The error for a refusal: ``message`` and the proxy's last 407."""
        assert self.response is not None  # set by answer() before any refusal
        return InvalidProxyStatus(self.response, message, proxy=self.proxy_url)

    def _log(self, header: str) -> str:
        logger.debug(
            "proxy %s: answering with Proxy-Authorization: %s", self.proxy_url, mask(header)
        )
        return header

    def _log_maybe(self, header: str | None) -> str | None:
        return None if header is None else self._log(header)
