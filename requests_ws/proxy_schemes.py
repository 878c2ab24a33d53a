"""The proxy authentication schemes, each answering challenges during one
tunnel's exchange: Basic, Digest (RFC 7616: MD5, SHA-256 and their ``-sess``
forms, ``qop=auth``, ``stale=true``), NTLM (v2) and Negotiate (SPNEGO:
Kerberos, falling back to NTLM inside SPNEGO) through pyspnego (the extra
``requests-ws[negotiate]``), and :class:`ProxyAuth`, the hook for the
caller's own. Which scheme answers is :mod:`.proxy_auth`'s decision.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import sys
from collections.abc import Callable
from typing import Any

from .exceptions import ProxyError
from .proxy_challenges import Challenge

__all__ = [
    "ProxyAuth",
    "DigestState",
    "Remembered",
    "Scheme",
    "Basic",
    "Digest",
    "Spnego",
    "Hooked",
    "SchemeFailed",
    "NEGOTIATE_EXTRA",
    "DIGEST_ALGORITHMS",
    "mask",
    "digest_usable",
    "spnego_available",
]

NEGOTIATE_EXTRA = "requests-ws[negotiate]"

# Digest's algorithms, ranked (higher is stronger), with their hash.
DIGEST_ALGORITHMS: dict[str, tuple[int, Callable[[bytes], Any]]] = {
    "SHA-256": (2, hashlib.sha256),
    "SHA-256-SESS": (2, hashlib.sha256),
    "MD5": (1, hashlib.md5),
    "MD5-SESS": (1, hashlib.md5),
}


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


@dataclasses.dataclass
class DigestState:
    realm: str
    nonce: str
    opaque: str | None
    algorithm: str
    qop: str | None
    count: int = 0


@dataclasses.dataclass
class Remembered:
    scheme: str
    digest: DigestState | None = None


def mask(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    return f"{scheme} ****" if rest else scheme


class Scheme:
    """One scheme's answers during one tunnel's exchange."""

    name = ""
    bound = False  # True: the legs must all go over one connection

    def first(self) -> str | None:
        """An answer before any challenge (only when remembered)."""
        return None

    def respond(self, challenge: Challenge) -> str | None:
        raise NotImplementedError

    def remembered(self) -> Remembered:
        return Remembered(self.name)


class Basic(Scheme):
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


class Digest(Scheme):
    name = "digest"

    def __init__(
        self,
        username: str,
        password: str,
        target: str,
        next_count: Callable[[DigestState], int],
        state: DigestState | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.target = target
        self.next_count = next_count
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
        if algorithm not in DIGEST_ALGORITHMS:
            return None
        qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            return None  # only qop=auth (auth-int needs the body: CONNECT has none)
        self.state = DigestState(
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
        _, function = DIGEST_ALGORITHMS[state.algorithm]

        def digest(text: str) -> str:
            return str(function(text.encode("utf-8")).hexdigest())

        count = self.next_count(state)
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

    def remembered(self) -> Remembered:
        return Remembered(self.name, self.state)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class SchemeFailed(ProxyError):
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


class Spnego(Scheme):
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
            raise SchemeFailed(
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


class Hooked(Scheme):
    def __init__(self, hook: ProxyAuth, proxy_url: str, target: str) -> None:
        self.hook = hook
        self.name = hook.scheme.lower()
        self.proxy_url = proxy_url
        self.target = target

    def first(self) -> str | None:
        return self.hook.first(self.proxy_url, self.target, True)

    def respond(self, challenge: Challenge) -> str | None:
        return self.hook.respond(challenge, self.proxy_url, self.target)


def digest_usable(challenge: Challenge) -> bool:
    algorithm = challenge.params.get("algorithm", "MD5").upper()
    qops = [q.strip().lower() for q in challenge.params.get("qop", "").split(",") if q.strip()]
    return (
        "nonce" in challenge.params
        and algorithm in DIGEST_ALGORITHMS
        and (not qops or "auth" in qops)
    )


def spnego_available() -> bool:
    try:
        import spnego  # noqa: F401
    except ImportError:
        return False
    return True
