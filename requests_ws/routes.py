"""How the bytes reach the server: direct TCP, a given socket, AF_UNIX,
an HTTP or HTTPS proxy (always a CONNECT tunnel, for ``ws://`` too), or a
SOCKS proxy; then TLS, or TLS inside the proxy's TLS.

:func:`select_route` decides from the URL, the session's settings and the
caller's options (a PAC file's list of proxies included); :func:`open_stream`
opens it within a timeout, failing over along that list, and turns every
failure into the exception a requests user expects, naming the host or proxy
at fault. The CONNECT exchange runs as many rounds as the proxy's
authentication takes (:mod:`.proxy_auth` decides what to answer), and a
certificate failure through a proxy says whether it may be intercepting TLS
(:mod:`.interception`).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import requests
import requests.utils
from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3.util.ssltransport import SSLTransport

from . import interception, pac
from .exceptions import InvalidProxyStatus, ProxyError
from .proxy_auth import (
    MAX_ROUNDS,
    AuthMemory,
    ProxyAuth,
    TunnelAuth,
    memory_for,
    parse_challenges,
    process_memory,
)
from .proxy_auth import logger as proxy_logger

__all__ = ["Proxy", "Route", "select_route", "open_stream", "tls_context"]

_PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
_MAX_CONNECT_RESPONSE = 65536


@dataclasses.dataclass
class Proxy:
    """A proxy to go through, credentials split from its URL."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    given_url: str | None = dataclasses.field(default=None, repr=False)
    """The URL as the configuration gave it (credentials included): PAC bans by it."""

    @property
    def url(self) -> str:
        """The proxy's URL without credentials, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> Proxy:
        if "://" not in url:
            url = "http://" + url
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _PROXY_SCHEMES:
            raise ProxyError(
                f"unsupported proxy scheme in {_redact(url)}: use one of "
                + ", ".join(f"{name}://" for name in _PROXY_SCHEMES),
                proxy=_redact(url),
            )
        if not parts.hostname:
            raise ProxyError(f"proxy URL {_redact(url)} has no host", proxy=_redact(url))
        try:
            port = parts.port
        except ValueError as exc:
            raise ProxyError(f"bad port in proxy URL {_redact(url)}: {exc}") from None
        if port is None:
            port = {"http": 80, "https": 443}.get(scheme, 1080)
        username = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        return cls(scheme, parts.hostname, port, username, password, given_url=url)


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclasses.dataclass
class Route:
    """Everything needed to open the stream to one server."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    server_hostname: str
    proxy: Proxy | None = None
    sock: socket.socket | None = None
    unix_path: str | None = None
    auth_memory: AuthMemory | None = None
    """What proxies asked for (the session's memory)."""
    auth_hook: ProxyAuth | None = None
    """The caller's hook for other proxy authentication schemes."""
    fallbacks: list[Proxy | None] = dataclasses.field(default_factory=list)
    """Where to go when ``proxy`` cannot be reached (a PAC file's list; None: DIRECT)."""
    on_proxy_failed: Callable[[Proxy], None] | None = None
    """Told of each proxy given up on, so that later lookups skip it."""


def tls_context(verify: bool | str | None, cert: Any = None) -> ssl.SSLContext:
    """An SSLContext that applies requests' ``verify`` and ``cert`` settings."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        location = (
            extract_zipped_paths(DEFAULT_CA_BUNDLE_PATH)  # type: ignore[no-untyped-call]
            if verify is True or verify is None
            else verify
        )
        if not os.path.exists(location):
            raise OSError(
                f"could not find a suitable TLS CA certificate bundle, invalid path: {location}"
            )
        if os.path.isdir(location):
            context.load_verify_locations(capath=location)
        else:
            context.load_verify_locations(cafile=location)
    if cert:
        if isinstance(cert, (tuple, list)):
            context.load_cert_chain(cert[0], cert[1])
        else:
            context.load_cert_chain(cert)
    return context


def select_route(
    url: str,
    *,
    session: requests.Session,
    proxies: dict[str, str],
    verify: bool | str | None,
    cert: Any,
    sock: socket.socket | None = None,
    unix_path: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    proxy: str | bool | None = True,
    proxy_ssl: ssl.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    proxy_auth: ProxyAuth | None = None,
    use_pac: bool = True,
) -> Route:
    """Decide how to reach ``url`` (an ``http(s)://`` URL).

    With ``proxy=True`` the proxy is the session's or the environment's, or
    what a ``pypac.PACSession``'s PAC file returns for ``url`` (unless
    ``use_pac`` is False: the caller gave ``proxies=``), the rest of its list
    kept for fail-over.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    tls = None
    if secure:
        tls = ssl_context if ssl_context is not None else tls_context(verify, cert)
    route = Route(
        host=host,
        port=port,
        tls=tls,
        server_hostname=server_hostname or host,
        sock=sock,
        unix_path=unix_path,
        auth_memory=memory_for(session),
        auth_hook=proxy_auth,
    )
    if sock is not None or unix_path is not None or proxy is None or proxy is False:
        return route

    def configured(proxy_url: str) -> Proxy:
        chosen = Proxy.parse(proxy_url)
        if chosen.scheme == "https":
            chosen.ssl_context = proxy_ssl if proxy_ssl is not None else tls_context(verify)
            chosen.server_hostname = proxy_server_hostname or chosen.host
        return chosen

    if proxy is True:
        candidates = pac.proxies_for(session, url) if use_pac else None
        if candidates is not None:
            chosen = [configured(c) if c is not None else None for c in candidates]
            route.proxy, route.fallbacks = chosen[0], chosen[1:]
            route.on_proxy_failed = pac.banning(session)
            return route
        proxy_url = requests.utils.select_proxy(url, proxies)
    else:
        proxy_url = proxy
    if not proxy_url:
        return route
    route.proxy = configured(proxy_url)
    return route


def open_stream(route: Route, timeout: float | None) -> Any:
    """Open the stream that ``route`` describes, within ``timeout`` seconds.

    Raises requests' ``ConnectionError`` or ``SSLError`` for the server,
    :class:`ProxyError` for the proxy, :class:`TimeoutError` on expiry.
    """
    end = None if timeout is None else time.monotonic() + timeout

    def remaining() -> float | None:
        if end is None:
            return None
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left

    stream: Any
    if route.sock is not None:
        stream = route.sock
    elif route.unix_path is not None:
        stream = _connect_unix(route.unix_path, remaining())
    elif route.proxy is None and not route.fallbacks:
        stream = _connect_tcp(route.host, route.port, remaining())
    else:
        stream = _connect_via_proxies(route, remaining)
    try:
        if route.tls is not None:
            stream.settimeout(remaining())
            stream = _start_tls(stream, route, remaining)
        stream.settimeout(remaining())
    except BaseException:
        stream.close()
        raise
    return stream


def _connection_error(what: str, exc: OSError) -> requests.exceptions.ConnectionError:
    return requests.exceptions.ConnectionError(f"cannot connect to {what}: {exc}")


def _connect_unix(path: str, timeout: float | None) -> socket.socket:
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stream.settimeout(timeout)
        stream.connect(path)
    except TimeoutError:
        stream.close()
        raise
    except OSError as exc:
        stream.close()
        if isinstance(exc, FileNotFoundError):
            raise
        raise _connection_error(f"Unix socket {path}", exc) from exc
    return stream


def _connect_tcp(host: str, port: int, timeout: float | None) -> socket.socket:
    try:
        stream = socket.create_connection((host, port), timeout)
    except TimeoutError:
        raise
    except OSError as exc:
        raise _connection_error(f"{host}:{port}", exc) from exc
    # As urllib3 does: small frames (pings, short messages) go out at once.
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return stream


def _start_tls(stream: Any, route: Route, remaining: Any = None) -> Any:
    context = route.tls
    assert context is not None
    try:
        if isinstance(stream, ssl.SSLSocket):
            # TLS inside the HTTPS proxy's TLS.
            return SSLTransport(stream, context, server_hostname=route.server_hostname)
        return context.wrap_socket(stream, server_hostname=route.server_hostname)
    except ssl.SSLCertVerificationError as exc:
        message = (
            f"TLS certificate verification of {route.server_hostname}:{route.port} failed: "
            f"{exc.verify_message or exc}"
        )
        if route.proxy is not None and remaining is not None:
            issuer = interception.certificate_issuer(_peer_certificate(route, remaining))
            message += "; " + interception.hint(issuer, route.proxy.url)
        raise requests.exceptions.SSLError(message) from exc
    except ssl.SSLError as exc:
        raise requests.exceptions.SSLError(
            f"TLS handshake with {route.server_hostname}:{route.port} failed: {exc}"
        ) from exc
    except TimeoutError:
        raise
    except OSError as exc:
        raise _connection_error(f"{route.host}:{route.port} (during TLS)", exc) from exc


def _peer_certificate(route: Route, remaining: Any) -> bytes:
    """The certificate presented for the server through the route's proxy,
    fetched over a second tunnel without verification (only to name its
    issuer in an error); empty when that fails."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        stream = _connect_via_proxies(route, remaining)
    except Exception:
        return b""
    try:
        stream.settimeout(remaining())
        if isinstance(stream, ssl.SSLSocket):
            wrapped: Any = SSLTransport(stream, unverified, server_hostname=route.server_hostname)
        else:
            wrapped = unverified.wrap_socket(stream, server_hostname=route.server_hostname)
        der = wrapped.getpeercert(binary_form=True)
        wrapped.close()
        return bytes(der or b"")
    except Exception:
        return b""
    finally:
        stream.close()


def _connect_via_proxies(route: Route, remaining: Any) -> Any:
    """Connect through ``route.proxy``, or, when it cannot be reached, the
    next of ``route.fallbacks`` (a PAC file's list; None is DIRECT)."""
    while True:
        proxy = route.proxy
        try:
            if proxy is None:
                return _connect_tcp(route.host, route.port, remaining())
            if proxy.scheme.startswith("socks"):
                return _connect_socks(route, remaining())
            return _connect_http_proxy(route, remaining)
        except (ProxyError, requests.exceptions.ConnectionError) as exc:
            # Only an unreachable proxy fails over; an answer (403, 407) does not.
            if not route.fallbacks or getattr(exc, "status", None) is not None:
                raise
            if proxy is not None and route.on_proxy_failed is not None:
                route.on_proxy_failed(proxy)
            route.proxy = route.fallbacks.pop(0)
            following = route.proxy.url if route.proxy is not None else "DIRECT"
            proxy_logger.debug(
                "proxy %s failed (%s): trying %s",
                proxy.url if proxy is not None else "DIRECT",
                exc,
                following,
            )


def _connect_socks(route: Route, timeout: float | None) -> Any:
    proxy = route.proxy
    assert proxy is not None
    try:
        import socks
    except ImportError:
        raise ProxyError(
            f"SOCKS proxy {proxy.url} needs PySocks: pip install 'requests-ws[socks]'",
            proxy=proxy.url,
        ) from None
    kind = socks.SOCKS4 if proxy.scheme.startswith("socks4") else socks.SOCKS5
    remote_dns = proxy.scheme in ("socks4a", "socks5h")
    try:
        return socks.create_connection(
            (route.host, route.port),
            timeout=timeout,
            proxy_type=kind,
            proxy_addr=proxy.host,
            proxy_port=proxy.port,
            proxy_rdns=remote_dns,
            proxy_username=proxy.username,
            proxy_password=proxy.password,
        )
    except socks.ProxyError as exc:
        cause = getattr(exc, "socket_err", None)
        if isinstance(cause, TimeoutError):
            raise TimeoutError("timed out") from exc
        message = getattr(exc, "msg", str(exc))
        raise ProxyError(
            f"SOCKS proxy {proxy.url} could not connect to {route.host}:{route.port}: {message}",
            proxy=proxy.url,
            reason=str(message),
        ) from exc
    except TimeoutError:
        raise
    except OSError as exc:
        raise ProxyError(
            f"cannot connect to SOCKS proxy {proxy.url}: {exc}", proxy=proxy.url
        ) from exc


def _connect_http_proxy(route: Route, remaining: Any) -> Any:
    """Open the tunnel through an HTTP(S) proxy, answering its 407s (see
    :mod:`.proxy_auth`); reconnect when the proxy closes after a 407."""
    proxy = route.proxy
    assert proxy is not None
    auth = TunnelAuth(
        proxy_url=proxy.url,
        proxy_host=proxy.host,
        username=proxy.username,
        password=proxy.password,
        target=_target(route),
        memory=route.auth_memory or process_memory(),
        hook=route.auth_hook,
    )
    for _ in range(MAX_ROUNDS):
        stream = _open_proxy_connection(proxy, remaining)
        try:
            if _tunnel(stream, route, remaining, auth):
                return stream
        except BaseException:
            stream.close()
            raise
        stream.close()
    raise ProxyError(
        f"proxy {proxy.url} closed the connection after every 407 ({MAX_ROUNDS} connections)",
        proxy=proxy.url,
        status=407,
    )


def _open_proxy_connection(proxy: Proxy, remaining: Any) -> Any:
    try:
        stream: Any = socket.create_connection((proxy.host, proxy.port), remaining())
    except TimeoutError:
        raise
    except OSError as exc:
        raise ProxyError(f"cannot connect to proxy {proxy.url}: {exc}", proxy=proxy.url) from exc
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if proxy.scheme != "https":
        return stream
    assert proxy.ssl_context is not None
    try:
        return proxy.ssl_context.wrap_socket(stream, server_hostname=proxy.server_hostname)
    except ssl.SSLCertVerificationError as exc:
        stream.close()
        raise ProxyError(
            f"TLS certificate verification of HTTPS proxy {proxy.url} failed: "
            f"{exc.verify_message or exc} (pass proxy_ssl= or verify= with the "
            "proxy's CA)",
            proxy=proxy.url,
        ) from exc
    except ssl.SSLError as exc:
        stream.close()
        raise ProxyError(
            f"TLS handshake with HTTPS proxy {proxy.url} failed: {exc}", proxy=proxy.url
        ) from exc
    except BaseException:
        stream.close()
        raise


def _target(route: Route) -> str:
    host = f"[{route.host}]" if ":" in route.host else route.host
    return f"{host}:{route.port}"


class _ProxyClosed(OSError):
    """The proxy closed the connection before answering."""


def _tunnel(stream: Any, route: Route, remaining: Any, auth: TunnelAuth) -> bool:
    """Ask the proxy for a CONNECT tunnel over ``stream``, as many rounds as
    its authentication takes (``auth`` decides each Proxy-Authorization).

    True: the tunnel is open; False: the proxy closed the connection after a
    407 and the next round needs a new one. Raises InvalidProxyStatus when
    the proxy refuses."""
    proxy = route.proxy
    assert proxy is not None
    target = _target(route)
    header = auth.first_header()
    answered_before = False
    while True:
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", "Proxy-Connection: Keep-Alive"]
        if header is not None:
            lines.append(f"Proxy-Authorization: {header}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            stream.settimeout(remaining())
            stream.sendall(request)
            head = _read_head(stream, remaining)
        except TimeoutError:
            raise
        except OSError as exc:
            if answered_before and header is not None:
                # Closed after its 407 without saying so: a new connection.
                proxy_logger.debug("proxy %s closed the connection after a 407", proxy.url)
                auth.connection_closed(header)
                return False
            raise ProxyError(
                f"proxy {proxy.url} failed while opening a tunnel to {target}: {exc}",
                proxy=proxy.url,
            ) from exc
        status_line, _, header_block = head.partition("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProxyError(
                f"proxy {proxy.url} sent an invalid answer to CONNECT: {status_line[:100]!r}",
                proxy=proxy.url,
            )
        proxy_logger.debug("CONNECT %s via %s: %s", target, proxy.url, status_line)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        if 200 <= status < 300:
            auth.succeeded()
            return True
        headers: list[tuple[str, str]] = []
        for line in header_block.split("\r\n"):
            name, _, value = line.partition(":")
            if name:
                headers.append((name.strip().lower(), value.strip()))
        if status != 407:
            message = f"proxy {proxy.url} refused CONNECT to {target}: {status} {reason}".rstrip()
            if status == 403:
                message += (
                    " (the proxy's policy forbids this tunnel; many allow CONNECT only to port 443)"
                )
            raise InvalidProxyStatus(message, proxy=proxy.url, status=status, reason=reason)
        challenges = parse_challenges(
            value for name, value in headers if name == "proxy-authenticate"
        )
        header = auth.answer(challenges, f"{status} {reason}".rstrip())
        answered_before = True
        if auth.needs_new_connection:
            auth.connection_closed(header)
            return False
        if not _read_body_if_kept(stream, parts[0], headers, remaining):
            proxy_logger.debug("proxy %s closes the connection after its 407", proxy.url)
            auth.connection_closed(header)
            return False


def _read_body_if_kept(
    stream: Any, version: str, headers: list[tuple[str, str]], remaining: Any
) -> bool:
    """Read a 407's body when the proxy keeps the connection; False when it
    will close it (then nothing is read)."""
    values = {name: value.lower() for name, value in headers}
    connection = values.get("proxy-connection", values.get("connection", ""))
    if "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection):
        return False
    try:
        if "chunked" in values.get("transfer-encoding", ""):
            _read_chunked(stream, remaining)
            return True
        length = values.get("content-length")
        if length is None or not length.isdigit() or int(length) > _MAX_CONNECT_RESPONSE:
            return False
        _read_exactly(stream, int(length), remaining)
    except TimeoutError:
        raise
    except (OSError, ValueError):
        return False
    return True


def _read_exactly(stream: Any, size: int, remaining: Any) -> bytes:
    data = bytearray()
    while len(data) < size:
        stream.settimeout(remaining())
        chunk = stream.recv(min(size - len(data), 65536))
        if not chunk:
            raise _ProxyClosed("the proxy closed the connection")
        data += chunk
    return bytes(data)


def _read_line(stream: Any, remaining: Any) -> bytes:
    line = bytearray()
    while not line.endswith(b"\r\n"):
        if len(line) > 4096:
            raise OSError("line too long in the proxy's answer")
        line += _read_exactly(stream, 1, remaining)
    return bytes(line)


def _read_chunked(stream: Any, remaining: Any) -> None:
    total = 0
    while True:
        size_text = _read_line(stream, remaining).split(b";", 1)[0].strip()
        size = int(size_text, 16) if size_text else 0
        total += size
        if total > _MAX_CONNECT_RESPONSE:
            raise OSError("407 body too long")
        if size == 0:
            while _read_line(stream, remaining) != b"\r\n":
                pass
            return
        _read_exactly(stream, size + 2, remaining)


def _read_head(stream: Any, remaining: Any) -> str:
    """Read the proxy's answer up to the blank line, not a byte further."""
    data = bytearray()
    while not data.endswith(b"\r\n\r\n"):
        if len(data) > _MAX_CONNECT_RESPONSE:
            raise OSError("answer to CONNECT too long")
        stream.settimeout(remaining())
        byte = stream.recv(1)
        if not byte:
            raise _ProxyClosed("the proxy closed the connection")
        data += byte
    return data.decode("latin-1")
