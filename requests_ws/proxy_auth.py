"""Proxy authentication for the CONNECT tunnel.

This module owns what the client says to a proxy's ``407``:

* :func:`parse_challenges` reads ``Proxy-Authenticate`` headers (RFC 7235:
  several challenges per header, token68 or auth-params, quoted strings);
* the schemes: Basic, Digest (RFC 7616: MD5, SHA-256 and their ``-sess``
  forms, ``qop=auth``, ``stale=true``), NTLM (v2) and Negotiate (SPNEGO:
  Kerberos, falling back to NTLM inside SPNEGO), the last two through
  pyspnego (the extra ``requests-ws[negotiate]``), with the logged-in user's
  credentials when the proxy URL has none;
* the choice of the strongest scheme offered (Negotiate, NTLM, Digest,
  Basic), never a credential before the proxy has named its schemes;
* :class:`AuthMemory`, what each proxy asked for, so that later tunnels
  through it answer at once (Basic or Negotiate in the first request, Digest
  with the last nonce, NTLM in its two legs); one per session, one for the
  process (``connect()`` without a session);
* :class:`ProxyAuth`, the documented hook for other schemes (``proxy_auth=``);
* :class:`TunnelAuth`, the state of one tunnel's exchange, which
  :mod:`.routes` drives round by round.

Every ``Proxy-Authorization`` value is logged masked, on the
``requests_ws.proxy`` logger at DEBUG.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import re
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .exceptions import InvalidProxyStatus, ProxyError

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

NEGOTIATE_EXTRA = "requests-ws[negotiate]"

# Strongest first; Digest's own algorithms are ranked in _DIGEST_ALGORITHMS.
_STRENGTH = {"negotiate": 4, "ntlm": 3, "digest": 2, "basic": 1}
_DIGEST_ALGORITHMS: dict[str, tuple[int, Callable[[bytes], Any]]] = {
    "SHA-256": (2, hashlib.sha256),
    "SHA-256-SESS": (2, hashlib.sha256),
    "MD5": (1, hashlib.md5),
    "MD5-SESS": (1, hashlib.md5),
}
_LABELS = {"ntlm": "NTLM", "negotiate": "Negotiate"}
# At most this many CONNECT requests for one tunnel, whatever the proxy says.
MAX_ROUNDS = 8


# -- parsing -----------------------------------------------------------------------


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


# -- the hook ------------------------------------------------------------------------


class ProxyAuth:
    """The hook for a scheme requests_ws does not know: pass an instance as
    ``connect(..., proxy_auth=...)`` (or ``ws_connect``).

    Set ``scheme`` to the scheme's name as the proxy offers it in
    ``Proxy-Authenticate`` (for example ``"Bearer"``) and implement
    :meth:`respond`. When the proxy offers that scheme it is used before any
    built-in one. ``respond`` may be called again on the same connection
    when the proxy answers with another challenge of the scheme (multi-leg
    schemes); it returns the whole ``Proxy-Authorization`` value, or
    ``None`` to give up. :meth:`first` may answer in the first request, once
    the proxy has asked for the scheme before (``remembered`` is then True).
    """

    scheme: str = ""

    def first(self, proxy_url: str, target: str, remembered: bool) -> str | None:
        """The ``Proxy-Authorization`` value of the first CONNECT, or ``None``."""
        return None

    def respond(self, challenge: Challenge, proxy_url: str, target: str) -> str | None:
        """The ``Proxy-Authorization`` value answering ``challenge``."""
        raise NotImplementedError


# -- memory --------------------------------------------------------------------------


@dataclasses.dataclass
class _Digest:
    realm: str
    nonce: str
    opaque: str | None
    algorithm: str
    qop: str | None
    count: int = 0


@dataclasses.dataclass
class _Remembered:
    scheme: str
    digest: _Digest | None = None


class AuthMemory:
    """What each proxy (by URL and user) last asked for; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str | None], _Remembered] = {}

    def get(self, proxy_url: str, username: str | None) -> _Remembered | None:
        with self._lock:
            entry = self._entries.get((proxy_url, username))
            return dataclasses.replace(entry) if entry is not None else None

    def remember(self, proxy_url: str, username: str | None, entry: _Remembered) -> None:
        with self._lock:
            self._entries[(proxy_url, username)] = entry

    def forget(self, proxy_url: str, username: str | None) -> None:
        with self._lock:
            self._entries.pop((proxy_url, username), None)

    def next_digest_count(self, digest: _Digest) -> int:
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


# -- the schemes -----------------------------------------------------------------------


def _mask(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    return f"{scheme} ****" if rest else scheme


class _Scheme:
    """One scheme's answers during one tunnel's exchange."""

    name = ""
    bound = False  # True: the legs must all go over one connection

    def first(self) -> str | None:
        """An answer before any challenge (only when remembered)."""
        return None

    def respond(self, challenge: Challenge) -> str | None:
        raise NotImplementedError

    def remembered(self) -> _Remembered:
        return _Remembered(self.name)


class _Basic(_Scheme):
    name = "basic"

    def __init__(self, username: str, password: str) -> None:
        self._value = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.answered = False

    def first(self) -> str:
        self.answered = True
        return self._value

    def respond(self, challenge: Challenge) -> str | None:
        if self.answered:
            return None  # rejected
        self.answered = True
        return self._value


class _DigestScheme(_Scheme):
    name = "digest"

    def __init__(
        self,
        username: str,
        password: str,
        target: str,
        memory: AuthMemory,
        state: _Digest | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.target = target
        self.memory = memory
        self.state = state
        self.answered_fresh = False

    def first(self) -> str | None:
        return self._answer() if self.state is not None else None

    def respond(self, challenge: Challenge) -> str | None:
        params = challenge.params
        stale = params.get("stale", "").lower() == "true"
        if self.answered_fresh and not stale:
            return None  # rejected
        nonce = params.get("nonce")
        if nonce is None:
            return None
        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in _DIGEST_ALGORITHMS:
            return None
        qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            return None  # only qop=auth (auth-int needs the body: CONNECT has none)
        self.state = _Digest(
            realm=params.get("realm", ""),
            nonce=nonce,
            opaque=params.get("opaque"),
            algorithm=algorithm,
            qop="auth" if qops else None,
        )
        self.answered_fresh = True
        return self._answer()

    def _answer(self) -> str:
        state = self.state
        assert state is not None
        _, function = _DIGEST_ALGORITHMS[state.algorithm]

        def digest(text: str) -> str:
            return str(function(text.encode("utf-8")).hexdigest())

        count = self.memory.next_digest_count(state)
        cnonce = os.urandom(16).hex()
        secret = digest(f"{self.username}:{state.realm}:{self.password}")
        if state.algorithm.endswith("-SESS"):
            secret = digest(f"{secret}:{state.nonce}:{cnonce}")
        method_hash = digest(f"CONNECT:{self.target}")
        nc = f"{count:08x}"
        if state.qop:
            response = digest(f"{secret}:{state.nonce}:{nc}:{cnonce}:{state.qop}:{method_hash}")
        else:
            response = digest(f"{secret}:{state.nonce}:{method_hash}")
        fields = [
            f'username="{_quote(self.username)}"',
            f'realm="{_quote(state.realm)}"',
            f'nonce="{_quote(state.nonce)}"',
            f'uri="{self.target}"',
            f"algorithm={state.algorithm}",
            f'response="{response}"',
        ]
        if state.qop:
            fields += [f"qop={state.qop}", f"nc={nc}", f'cnonce="{cnonce}"']
        if state.opaque is not None:
            fields.append(f'opaque="{_quote(state.opaque)}"')
        return "Digest " + ", ".join(fields)

    def remembered(self) -> _Remembered:
        return _Remembered(self.name, self.state)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class _SchemeFailed(ProxyError):
    """A scheme could not produce an answer (no ticket, pyspnego's error)."""


def _import_spnego(scheme: str, proxy_url: str) -> Any:
    try:
        import spnego
    except ImportError:
        raise ProxyError(
            f"proxy {proxy_url} asks for {scheme} authentication, which needs pyspnego: "
            f"pip install '{NEGOTIATE_EXTRA}'",
            proxy=proxy_url,
            status=407,
        ) from None
    return spnego


class _Spnego(_Scheme):
    """NTLM or Negotiate through pyspnego: a context per tunnel, legs bound to
    one connection."""

    bound = True

    def __init__(
        self,
        name: str,
        label: str,
        username: str | None,
        password: str | None,
        proxy_host: str,
        proxy_url: str,
    ) -> None:
        self.name = name
        self.label = label
        self.username = username
        self.password = password
        self.proxy_host = proxy_host
        self.proxy_url = proxy_url
        self.context: Any = None
        self.legs = 0

    def _step(self, token: bytes | None) -> str | None:
        spnego = _import_spnego(self.label, self.proxy_url)
        try:
            if self.context is None:
                self.context = spnego.client(
                    self.username,
                    self.password,
                    hostname=self.proxy_host,
                    service="HTTP",
                    protocol=self.name,
                )
            out = self.context.step(token)
        except ProxyError:
            raise
        except Exception as exc:
            whose = (
                "the logged-in user's credentials (Kerberos ticket cache)"
                if self.username is None
                else f"the credentials of user {self.username!r}"
            )
            raise _SchemeFailed(
                f"{self.label} authentication to proxy {self.proxy_url} with {whose} "
                f"failed: {type(exc).__name__}: {_first_line(exc)}{_kerberos_hint()}",
                proxy=self.proxy_url,
                status=407,
            ) from None
        self.legs += 1
        if not out:
            return None
        return f"{self.label} " + base64.b64encode(out).decode()

    def first(self) -> str | None:
        return self._step(None)

    def respond(self, challenge: Challenge) -> str | None:
        if self.context is None:
            return self._step(None)
        if not challenge.token:
            return None  # the proxy started over: our last leg was rejected
        if self.context.complete:
            return None
        try:
            token = base64.b64decode(challenge.token, validate=True)
        except ValueError:
            return None
        return self._step(token)

    def restart(self) -> None:
        self.context = None


def _kerberos_hint() -> str:
    """Where Kerberos is missing (pyspnego without gssapi, off Windows), say so."""
    if sys.platform == "win32":
        return ""
    try:
        import gssapi  # noqa: F401
    except ImportError:
        return " (Kerberos needs gssapi: pip install 'pyspnego[kerberos]')"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


class _Hooked(_Scheme):
    def __init__(self, hook: ProxyAuth, proxy_url: str, target: str) -> None:
        self.hook = hook
        self.name = hook.scheme.lower()
        self.proxy_url = proxy_url
        self.target = target

    def first(self) -> str | None:
        return self.hook.first(self.proxy_url, self.target, True)

    def respond(self, challenge: Challenge) -> str | None:
        return self.hook.respond(challenge, self.proxy_url, self.target)


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
        self.scheme: _Scheme | None = None
        self.offered: list[Challenge] = []
        self.from_memory = False
        self.pending: str | None = None  # to send first on the next connection
        self.rounds = 0
        self.failed: list[_Scheme] = []  # rejected or failed, in the order tried
        self.failure: ProxyError | None = None  # why a scheme could not even answer
        self.needs_new_connection = False  # set by answer(): send it on a new connection

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
        elif isinstance(self.scheme, _Spnego):
            self.scheme.restart()
        try:
            return self._log_maybe(self.scheme.first())
        except _SchemeFailed as exc:
            if not self.from_memory:
                raise
            # The remembered scheme cannot answer now (no ticket): ask the proxy.
            logger.debug("proxy %s: %s", self.proxy_url, exc)
            self.memory.forget(self.proxy_url, self.username)
            self.scheme = None
            self.from_memory = False
            return None

    def answer(self, challenges: list[Challenge], status_line: str) -> str:
        """The ``Proxy-Authorization`` answering a 407; raises when there is none."""
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

    def _respond(self, scheme: _Scheme, challenges: list[Challenge]) -> str | None:
        """The scheme's answer; None when it failed (the failure kept for the error)."""
        try:
            return scheme.respond(self._best(challenges))
        except _SchemeFailed as exc:
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
            if isinstance(self.scheme, _Spnego) and self.scheme.legs > 1:
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

    def _remembered_scheme(self, remembered: _Remembered) -> _Scheme | None:
        name = remembered.scheme
        if self.hook is not None and name == self.hook.scheme.lower():
            return _Hooked(self.hook, self.proxy_url, self.target)
        if name in ("negotiate", "ntlm"):
            return self._spnego(name)
        if self.username is None:
            return None
        if name == "basic":
            return _Basic(self.username, self.password or "")
        if name == "digest" and remembered.digest is not None:
            return _DigestScheme(
                self.username, self.password or "", self.target, self.memory, remembered.digest
            )
        return None

    def _spnego(self, name: str) -> _Spnego:
        label = "Negotiate" if name == "negotiate" else "NTLM"
        # pyspnego takes DOMAIN\\user and user@REALM as they are.
        return _Spnego(name, label, self.username, self.password, self.proxy_host, self.proxy_url)

    def _choose(self, challenges: list[Challenge], status_line: str) -> _Scheme:
        """The strongest scheme offered that can be answered and has not failed."""
        names = {c.name for c in challenges}
        failed = {scheme.name for scheme in self.failed}
        if self.hook is not None and self.hook.scheme.lower() in names - failed:
            return _Hooked(self.hook, self.proxy_url, self.target)
        known = sorted(
            (n for n in names - failed if n in _STRENGTH),
            key=lambda n: _STRENGTH[n],
            reverse=True,
        )
        have_spnego = _spnego_available()
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
                usable = [c for c in challenges if c.name == "digest" and _digest_usable(c)]
                if usable:
                    return _DigestScheme(
                        self.username, self.password or "", self.target, self.memory
                    )
                continue
            if name == "basic" and not names & {"digest", "ntlm", "negotiate"}:
                # Never a password in the clear to a proxy that takes better.
                return _Basic(self.username, self.password or "")
        if self.failure is not None and not any(
            isinstance(scheme, (_Basic, _DigestScheme)) for scheme in self.failed
        ):
            raise self.failure
        if self.failed:
            raise self._rejected(status_line)
        raise self._cannot(status_line, names, have_spnego)

    @staticmethod
    def _best(challenges: list[Challenge]) -> Challenge:
        def rank(challenge: Challenge) -> int:
            algorithm = challenge.params.get("algorithm", "MD5").upper()
            return _DIGEST_ALGORITHMS.get(algorithm, (0, None))[0]

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
        return _status_error(message, self.proxy_url, status_line)

    def _cannot(self, status_line: str, names: set[str], have_spnego: bool) -> ProxyError:
        offered = self._offered_text()
        if names & {"negotiate", "ntlm"} and not have_spnego:
            message = (
                f"proxy {self.proxy_url} requires authentication ({offered}): "
                f"Negotiate and NTLM need pyspnego: pip install '{NEGOTIATE_EXTRA}'"
            )
            return _status_error(message, self.proxy_url, status_line)
        if self.username is None:
            scheme = self.proxy_url.split("://", 1)[0]
            host_port = self.proxy_url.split("://", 1)[1]
            message = (
                f"proxy {self.proxy_url} refused CONNECT to {self.target}: {status_line} "
                "(the proxy requires authentication: put user:password in the proxy URL, "
                f"e.g. {scheme}://user:password@{host_port}); it asked for: {offered}"
            )
            return _status_error(message, self.proxy_url, status_line)
        message = (
            f"proxy {self.proxy_url} refused CONNECT to {self.target}: {status_line} "
            f"(no scheme it offers can be answered safely: {offered}; requests_ws "
            "answers Negotiate, NTLM, Digest and, only when nothing better is offered, Basic)"
        )
        return _status_error(message, self.proxy_url, status_line)

    def _log(self, header: str) -> str:
        logger.debug(
            "proxy %s: answering with Proxy-Authorization: %s", self.proxy_url, _mask(header)
        )
        return header

    def _log_maybe(self, header: str | None) -> str | None:
        return None if header is None else self._log(header)


def _status_error(message: str, proxy_url: str, status_line: str) -> InvalidProxyStatus:
    """The error for a refusal; ``status_line`` is the answer's "407 Reason"."""
    code, _, reason = status_line.partition(" ")
    status = int(code) if code.isdigit() else 407
    return InvalidProxyStatus(message, proxy=proxy_url, status=status, reason=reason)


def _digest_usable(challenge: Challenge) -> bool:
    algorithm = challenge.params.get("algorithm", "MD5").upper()
    qops = [q.strip().lower() for q in challenge.params.get("qop", "").split(",") if q.strip()]
    return (
        "nonce" in challenge.params
        and algorithm in _DIGEST_ALGORITHMS
        and (not qops or "auth" in qops)
    )


def _spnego_available() -> bool:
    try:
        import spnego  # noqa: F401
    except ImportError:
        return False
    return True
