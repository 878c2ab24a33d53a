"""How the bytes reach the server: direct TCP, a given socket, AF_UNIX,
an HTTP or HTTPS proxy (always a CONNECT tunnel, for ``ws://`` too), or a
SOCKS proxy; then TLS, or TLS inside the proxy's TLS.

:func:`select_route` decides from the URL, the session's settings and the
caller's options (a PAC file's list of proxies included); :func:`open_stream`
opens it before the opening's deadline, failing over along that list, and
turns every failure into the exception a requests user expects, naming the
host or proxy at fault. The CONNECT exchange runs as many rounds as the
proxy's authentication takes (:mod:`.proxy_auth` decides what to answer), and
a certificate failure through a proxy says whether it may be intercepting TLS
(:mod:`.interception`).

The caller's route options travel as one :class:`RouteOptions`; the proxy for
a URL is chosen in one place, :func:`choose_proxies`; every socket opened here
(each reconnection to a proxy that closes after its 407 included) is watched
by the opening's :class:`.Deadline`, so a peer or proxy that trickles bytes
cannot stretch ``open_timeout``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import ssl
import urllib.parse
from collections.abc import Callable
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

import requests
import requests.utils
from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3.util.ssltransport import SSLTransport

from . import interception, pac
from .exceptions import (
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    ProxyError,
    also_builtin,
    network_error,
)
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

if TYPE_CHECKING:
    from .deadline import Deadline

__all__ = [
    "Proxy",
    "Route",
    "RouteOptions",
    "choose_proxy",
    "choose_proxies",
    "select_route",
    "open_stream",
    "tls_context",
]

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
        """Split a proxy URL; raise :class:`InvalidProxy` (naming it, masked) if unusable."""
        if not isinstance(url, str):
            raise InvalidProxy(repr(url), f"expected a URL string, got {type(url).__name__}")
        if "://" not in url:
            url = "http://" + url
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidProxy(url, f"bad port: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _PROXY_SCHEMES:
            raise InvalidProxy(
                url,
                "unsupported scheme: use one of "
                + ", ".join(f"{name}://" for name in _PROXY_SCHEMES),
            )
        if not parts.hostname:
            raise InvalidProxy(url, "it has no host")
        if port is None:
            port = {"http": 80, "https": 443}.get(scheme, 1080)
        username = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password else None
        return cls(scheme, parts.hostname, port, username, password, given_url=url)


@dataclasses.dataclass(frozen=True)
class RouteOptions:
    """The caller's say on how to reach the server (the seed API's options).

    ``proxy``: ``True`` for the session's and environment's proxies, a proxy
    URL, or ``None`` for a direct connection. ``sock`` or ``unix_path``
    replace TCP (and any proxy). ``user_agent`` goes on a proxy's CONNECT.
    """

    sock: socket.socket | None = None
    unix_path: str | None = None
    ssl: SSLContext | None = None
    server_hostname: str | None = None
    proxy: str | bool | None = True
    proxy_ssl: SSLContext | None = None
    proxy_server_hostname: str | None = None
    user_agent: str | None = None
    proxy_auth: ProxyAuth | None = None
    """The caller's hook for proxy authentication schemes requests_ws does not know."""
    use_pac: bool = True
    """Ask a ``pypac.PACSession``'s PAC file (False when the caller gave ``proxies=``)."""

    @property
    def needs_own_route(self) -> bool:
        """True when only our route can do what was asked (a given socket,
        AF_UNIX, our own TLS settings): a mounted adapter cannot."""
        return not (
            self.sock is None
            and self.unix_path is None
            and self.ssl is None
            and self.server_hostname is None
            and self.proxy_ssl is None
            and self.proxy_server_hostname is None
        )


def choose_proxies(
    url: str,
    proxies: dict[str, str],
    options: RouteOptions,
    session: requests.Session | None = None,
) -> list[str | None]:
    """The proxy URLs to reach ``url`` (an ``http(s)://`` URL) through, in
    order: the first to use, the rest for fail-over (a PAC file's list);
    ``None`` is a direct connection.

    The one place that decides: no proxy for a given socket or AF_UNIX path
    or ``proxy=None``; the explicit ``proxy=`` URL; with ``proxy=True``, what
    the PAC file of ``session`` (a ``pypac.PACSession``) lists for ``url``
    unless ``options.use_pac`` is False, else requests' own selection over
    ``proxies`` (the session's, the call's and, when the session trusts the
    environment, ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``).
    """
    if options.sock is not None or options.unix_path is not None:
        return [None]
    if options.proxy is None or options.proxy is False:
        return [None]
    if options.proxy is True:
        if options.use_pac and session is not None:
            listed = pac.proxies_for(session, url)
            if listed is not None:
                return listed or [None]
        return [requests.utils.select_proxy(url, proxies) or None]
    return [options.proxy]


def choose_proxy(
    url: str,
    proxies: dict[str, str],
    options: RouteOptions,
    session: requests.Session | None = None,
) -> str | None:
    """The first of :func:`choose_proxies`: the proxy URL to use, or None."""
    return choose_proxies(url, proxies, options, session)[0]


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
    user_agent: str | None = None
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
            extract_zipped_paths(DEFAULT_CA_BUNDLE_PATH)
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
    proxies: dict[str, str],
    verify: bool | str | None,
    cert: Any,
    options: RouteOptions,
    session: requests.Session | None = None,
    candidates: list[str | None] | None = None,
) -> Route:
    """Decide how to reach ``url`` (an ``http(s)://`` URL).

    The proxies are :func:`choose_proxies`' (``session``'s PAC file
    included; ``candidates`` when the caller already asked it), the rest of
    the list kept for fail-over; ``session``'s memory of what proxies asked
    for answers their 407s.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    tls = None
    if secure:
        tls = options.ssl if options.ssl is not None else tls_context(verify, cert)
    route = Route(
        host=host,
        port=port,
        tls=tls,
        server_hostname=options.server_hostname or host,
        sock=options.sock,
        unix_path=options.unix_path,
        user_agent=options.user_agent,
        auth_memory=None if session is None else memory_for(session),
        auth_hook=options.proxy_auth,
    )

    def configured(proxy_url: str) -> Proxy:
        chosen = Proxy.parse(proxy_url)
        if chosen.scheme == "https":
            chosen.ssl_context = (
                options.proxy_ssl if options.proxy_ssl is not None else tls_context(verify)
            )
            chosen.server_hostname = options.proxy_server_hostname or chosen.host
        return chosen

    if candidates is None:
        candidates = choose_proxies(url, proxies, options, session)
    chosen = [None if c is None else configured(c) for c in candidates]
    route.proxy, route.fallbacks = chosen[0], chosen[1:]
    if route.fallbacks and session is not None:
        route.on_proxy_failed = pac.banning(session)
    return route


def open_stream(route: Route, deadline: Deadline) -> Any:
    """Open the stream that ``route`` describes before ``deadline``.

    Every socket opened is watched by ``deadline``. Raises requests'
    ``ConnectionError`` or ``SSLError`` (also the built-in error) for the
    server, :class:`ProxyError` for the proxy, :class:`TimeoutError` or
    :class:`OpenTimeout` on expiry.
    """
    remaining = deadline.remaining
    stream: Any
    if route.sock is not None:
        stream = route.sock
        deadline.watch(stream)
    elif route.unix_path is not None:
        stream = _connect_unix(route.unix_path, deadline)
    elif route.proxy is None and not route.fallbacks:
        stream = _connect_tcp(route.host, route.port, deadline)
    else:
        stream = _connect_via_proxies(route, deadline)
    try:
        if route.tls is not None:
            stream.settimeout(remaining())
            stream = _start_tls(stream, route, deadline)
            if isinstance(stream, socket.socket):
                # wrap_socket detached the TCP socket the deadline watched.
                deadline.watch(stream)
        stream.settimeout(remaining())
    except BaseException:
        stream.close()
        raise
    return stream


def _connection_error(what: str, exc: OSError) -> requests.exceptions.RequestException:
    return network_error(
        requests.exceptions.ConnectionError, f"cannot connect to {what}: {exc}", exc
    )


def _connect_unix(path: str, deadline: Deadline) -> socket.socket:
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline.watch(stream)
    try:
        stream.settimeout(deadline.remaining())
        stream.connect(path)
    except TimeoutError:
        stream.close()
        raise
    except OSError as exc:
        stream.close()
        raise _connection_error(f"Unix socket {path}", exc) from exc
    return stream


def _create_connection(host: str, port: int, deadline: Deadline) -> socket.socket:
    """socket.create_connection, each socket watched by ``deadline`` before connect."""
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        stream = socket.socket(family, kind, proto)
        deadline.watch(stream)
        try:
            stream.settimeout(deadline.remaining())
            stream.connect(address)
        except TimeoutError:
            stream.close()
            raise
        except OSError as exc:
            stream.close()
            deadline.unwatch(stream)
            error = exc
            continue
        # As urllib3 does: small frames (pings, short messages) go out at once.
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return stream
    raise error if error is not None else OSError(f"getaddrinfo returned nothing for {host}")


def _connect_tcp(host: str, port: int, deadline: Deadline) -> socket.socket:
    try:
        return _create_connection(host, port, deadline)
    except TimeoutError:
        raise
    except OSError as exc:
        raise _connection_error(f"{host}:{port}", exc) from exc


_CERT_HINT = (
    "pass verify= with the CA bundle that issued the server's certificate (or ssl= with "
    "an SSLContext that trusts it); behind a TLS-intercepting proxy, that is the proxy's CA"
)


def _start_tls(stream: Any, route: Route, deadline: Deadline | None = None) -> Any:
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
            f"{exc.verify_message or exc} ({_CERT_HINT})"
        )
        if route.proxy is not None and deadline is not None:
            issuer = interception.certificate_issuer(_peer_certificate(route, deadline))
            message += "; " + interception.hint(issuer, route.proxy.url)
        raise network_error(requests.exceptions.SSLError, message, exc) from exc
    except ssl.SSLError as exc:
        raise network_error(
            requests.exceptions.SSLError,
            f"TLS handshake with {route.server_hostname}:{route.port} failed: {exc}",
            exc,
        ) from exc
    except TimeoutError:
        raise
    except OSError as exc:
        raise _connection_error(f"{route.host}:{route.port} (during TLS)", exc) from exc


def _peer_certificate(route: Route, deadline: Deadline) -> bytes:
    """The certificate presented for the server through the route's proxy,
    fetched over a second tunnel without verification (only to name its
    issuer in an error); empty when that fails."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        stream = _connect_via_proxies(route, deadline)
    except Exception:
        return b""
    try:
        stream.settimeout(deadline.remaining())
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
        if isinstance(stream, socket.socket):
            deadline.unwatch(stream)


def _connect_via_proxies(route: Route, deadline: Deadline) -> Any:
    """Connect through ``route.proxy``, or, when it cannot be reached, the
    next of ``route.fallbacks`` (a PAC file's list; None is DIRECT)."""
    while True:
        proxy = route.proxy
        try:
            if proxy is None:
                return _connect_tcp(route.host, route.port, deadline)
            if proxy.scheme.startswith("socks"):
                return _connect_socks(route, deadline)
            return _connect_http_proxy(route, deadline)
        except (ProxyError, requests.exceptions.ConnectionError) as exc:
            # Only an unreachable proxy fails over; an answer (403, 407) does not.
            if (
                not route.fallbacks
                or getattr(exc, "status", None) is not None
                or deadline.has_passed()
            ):
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


def _connect_socks(route: Route, deadline: Deadline) -> Any:
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
    error: BaseException | None = None
    try:
        addresses = socket.getaddrinfo(proxy.host, proxy.port, 0, socket.SOCK_STREAM)
    except OSError as exc:
        raise also_builtin(
            ProxyError(f"cannot connect to SOCKS proxy {proxy.url}: {exc}", proxy=proxy.url), exc
        ) from exc
    for family, sock_type, proto, _, _ in addresses:
        # As socks.create_connection does, but each socket is watched by the
        # deadline before the SOCKS negotiation starts.
        stream = socks.socksocket(family, sock_type, proto)
        deadline.watch(stream)
        try:
            stream.settimeout(deadline.remaining())
            stream.set_proxy(
                kind, proxy.host, proxy.port, remote_dns, proxy.username, proxy.password
            )
            stream.connect((route.host, route.port))
        except BaseException as exc:
            stream.close()
            deadline.unwatch(stream)
            if not isinstance(exc, (OSError, socks.ProxyError)):
                raise
            error = exc
            if isinstance(exc, socks.GeneralProxyError) or deadline.has_passed():
                break
            continue
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return stream
    if isinstance(error, socks.ProxyError):
        cause = getattr(error, "socket_err", None)
        if isinstance(cause, TimeoutError) or deadline.has_passed():
            raise TimeoutError("timed out") from error
        message = getattr(error, "msg", str(error))
        failure = ProxyError(
            f"SOCKS proxy {proxy.url} could not connect to {route.host}:{route.port}: {message}",
            proxy=proxy.url,
            reason=str(message),
        )
        if isinstance(cause, OSError):
            failure = also_builtin(failure, cause)
        raise failure from error
    if isinstance(error, TimeoutError):
        raise error
    failure = ProxyError(f"cannot connect to SOCKS proxy {proxy.url}: {error}", proxy=proxy.url)
    raise (failure if error is None else also_builtin(failure, error)) from error


def _connect_http_proxy(route: Route, deadline: Deadline) -> Any:
    """Open the tunnel through an HTTP(S) proxy, answering its 407s (see
    :mod:`.proxy_auth`); reconnect when the proxy closes after a 407. Each
    connection to the proxy is watched by ``deadline``."""
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
        stream = _open_proxy_connection(proxy, deadline)
        try:
            if _tunnel(stream, route, deadline.remaining, auth):
                return stream
        except BaseException:
            _close_watched(stream, deadline)
            raise
        _close_watched(stream, deadline)
    raise ProxyError(
        f"proxy {proxy.url} closed the connection after every 407 ({MAX_ROUNDS} connections)",
        proxy=proxy.url,
        status=407,
    )


def _close_watched(stream: Any, deadline: Deadline) -> None:
    stream.close()
    if isinstance(stream, socket.socket):
        deadline.unwatch(stream)


def _open_proxy_connection(proxy: Proxy, deadline: Deadline) -> Any:
    """A connection to ``proxy`` (TLS to an HTTPS proxy), watched by ``deadline``."""
    try:
        stream: Any = _create_connection(proxy.host, proxy.port, deadline)
    except TimeoutError:
        raise
    except OSError as exc:
        raise also_builtin(
            ProxyError(f"cannot connect to proxy {proxy.url}: {exc}", proxy=proxy.url), exc
        ) from exc
    if proxy.scheme != "https":
        return stream
    assert proxy.ssl_context is not None
    try:
        stream.settimeout(deadline.remaining())
        wrapped = proxy.ssl_context.wrap_socket(stream, server_hostname=proxy.server_hostname)
        # wrap_socket detached the TCP socket the deadline watched.
        deadline.watch(wrapped)
        return wrapped
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


_STATUS_LINE = re.compile(r"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: (.*))?")


def connect_answer(
    proxy_url: str, status: int, reason: str, header_lines: list[tuple[str, str]]
) -> requests.Response:
    """The proxy's answer to CONNECT as a :class:`requests.Response` (status,
    reason, headers; no body), for :class:`InvalidProxyStatus`."""
    headers: requests.structures.CaseInsensitiveDict[str] = (
        requests.structures.CaseInsensitiveDict()
    )
    for name, value in header_lines:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.headers = headers
    response.url = proxy_url
    response._content = b""
    return response


def _tunnel(stream: Any, route: Route, remaining: Any, auth: TunnelAuth) -> bool:
    """Ask the proxy for a CONNECT tunnel over ``stream``, as many rounds as
    its authentication takes (``auth`` decides each Proxy-Authorization).

    True: the tunnel is open; False: the proxy closed the connection after a
    407 and the next round needs a new one. Raises
    :class:`InvalidProxyMessage` for an answer that is not HTTP and
    :class:`InvalidProxyStatus` (with ``.response``) when the proxy refuses."""
    proxy = route.proxy
    assert proxy is not None
    target = _target(route)
    header = auth.first_header()
    answered_before = False
    while True:
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}", "Proxy-Connection: Keep-Alive"]
        if route.user_agent is not None:
            lines.append(f"User-Agent: {route.user_agent}")
        if header is not None:
            lines.append(f"Proxy-Authorization: {header}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            stream.settimeout(remaining())
            stream.sendall(request)
            head = _read_head(stream, remaining)
        except TimeoutError:
            raise
        except InvalidProxyMessage:
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
        match = _STATUS_LINE.fullmatch(status_line)
        if match is None:
            raise InvalidProxyMessage(
                f"proxy {proxy.url} sent an invalid answer to CONNECT: {status_line[:100]!r}",
                proxy=proxy.url,
            )
        proxy_logger.debug("CONNECT %s via %s: %s", target, proxy.url, status_line)
        status = int(match.group(1))
        reason = match.group(2) or ""
        if 200 <= status < 300:
            auth.succeeded()
            return True
        header_lines: list[tuple[str, str]] = []
        for line in header_block.split("\r\n"):
            name, colon, value = line.partition(":")
            if colon and name.strip():
                header_lines.append((name.strip(), value.strip()))
        headers = [(name.lower(), value) for name, value in header_lines]
        response = connect_answer(proxy.url, status, reason, header_lines)
        if status != 407:
            message = f"proxy {proxy.url} refused CONNECT to {target}: {status} {reason}".rstrip()
            if status == 403:
                message += (
                    " (the proxy's policy forbids this tunnel; many allow CONNECT only to port 443)"
                )
            raise InvalidProxyStatus(response, message, proxy=proxy.url)
        challenges = parse_challenges(
            value for name, value in headers if name == "proxy-authenticate"
        )
        header = auth.answer(challenges, response)
        answered_before = True
        if auth.needs_new_connection:
            auth.connection_closed(header)
            return False
        if not _read_body_if_kept(stream, status_line.split(" ", 1)[0], headers, remaining):
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
            raise InvalidProxyMessage(
                f"the proxy's answer to CONNECT is longer than {_MAX_CONNECT_RESPONSE} bytes"
            )
        stream.settimeout(remaining())
        byte = stream.recv(1)
        if not byte:
            if not data:
                raise _ProxyClosed("the proxy closed the connection")
            raise InvalidProxyMessage(
                f"the proxy closed the connection in the middle of its answer to CONNECT: "
                f"{bytes(data[:100])!r}"
            )
        data += byte
    return data.decode("latin-1")
