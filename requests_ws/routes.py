"""How the bytes reach the server: direct TCP, a given socket, AF_UNIX,
an HTTP or HTTPS proxy (always a CONNECT tunnel, for ``ws://`` too), or a
SOCKS proxy; then TLS, or TLS inside the proxy's TLS.

:func:`select_route` decides from the URL, the session's settings and the
caller's options; :func:`open_stream` opens it within a timeout and turns
every failure into the exception a requests user expects, naming the host
or proxy at fault.

The caller's route options travel as one :class:`RouteOptions`; the proxy for
a URL is chosen in one place, :func:`choose_proxy`; every socket opened here
is watched by the opening's :class:`.Deadline`, so a peer or proxy that
trickles bytes cannot stretch ``open_timeout``.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import socket
import ssl
import urllib.parse
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

import requests
import requests.utils
from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3.util.ssltransport import SSLTransport

from .exceptions import (
    InvalidProxy,
    InvalidProxyMessage,
    InvalidProxyStatus,
    ProxyError,
    also_builtin,
    network_error,
)

if TYPE_CHECKING:
    from .deadline import Deadline

__all__ = [
    "Proxy",
    "Route",
    "RouteOptions",
    "choose_proxy",
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
    password: str | None
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None

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
        return cls(scheme, parts.hostname, port, username, password)


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


def choose_proxy(url: str, proxies: dict[str, str], options: RouteOptions) -> str | None:
    """The proxy URL to reach ``url`` (an ``http(s)://`` URL) through, or None.

    The one place that decides: no proxy for a given socket or AF_UNIX path
    or ``proxy=None``; the explicit ``proxy=`` URL; else requests' own
    selection over ``proxies`` (the session's, the call's and, when the
    session trusts the environment, ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``).
    """
    if options.sock is not None or options.unix_path is not None:
        return None
    if options.proxy is None or options.proxy is False:
        return None
    if options.proxy is True:
        return requests.utils.select_proxy(url, proxies) or None
    return options.proxy


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
) -> Route:
    """Decide how to reach ``url`` (an ``http(s)://`` URL)."""
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
    )
    proxy_url = choose_proxy(url, proxies, options)
    if not proxy_url:
        return route
    route.proxy = Proxy.parse(proxy_url)
    if route.proxy.scheme == "https":
        route.proxy.ssl_context = (
            options.proxy_ssl if options.proxy_ssl is not None else tls_context(verify)
        )
        route.proxy.server_hostname = options.proxy_server_hostname or route.proxy.host
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
    elif route.proxy is None:
        stream = _connect_tcp(route.host, route.port, deadline)
    elif route.proxy.scheme.startswith("socks"):
        stream = _connect_socks(route, deadline)
    else:
        stream = _connect_http_proxy(route, deadline)
    try:
        if route.tls is not None:
            stream.settimeout(remaining())
            stream = _start_tls(stream, route)
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


def _start_tls(stream: Any, route: Route) -> Any:
    context = route.tls
    assert context is not None
    try:
        if isinstance(stream, ssl.SSLSocket):
            # TLS inside the HTTPS proxy's TLS.
            return SSLTransport(stream, context, server_hostname=route.server_hostname)
        return context.wrap_socket(stream, server_hostname=route.server_hostname)
    except ssl.SSLCertVerificationError as exc:
        raise network_error(
            requests.exceptions.SSLError,
            f"TLS certificate verification of {route.server_hostname}:{route.port} failed: "
            f"{exc.verify_message or exc} ({_CERT_HINT})",
            exc,
        ) from exc
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
    proxy = route.proxy
    assert proxy is not None
    try:
        stream: Any = _create_connection(proxy.host, proxy.port, deadline)
    except TimeoutError:
        raise
    except OSError as exc:
        raise also_builtin(
            ProxyError(f"cannot connect to proxy {proxy.url}: {exc}", proxy=proxy.url), exc
        ) from exc
    try:
        if proxy.scheme == "https":
            assert proxy.ssl_context is not None
            try:
                stream.settimeout(deadline.remaining())
                stream = proxy.ssl_context.wrap_socket(
                    stream, server_hostname=proxy.server_hostname
                )
                # wrap_socket detached the TCP socket the deadline watched.
                deadline.watch(stream)
            except ssl.SSLCertVerificationError as exc:
                raise ProxyError(
                    f"TLS certificate verification of HTTPS proxy {proxy.url} failed: "
                    f"{exc.verify_message or exc} (pass proxy_ssl= or verify= with the "
                    "proxy's CA)",
                    proxy=proxy.url,
                ) from exc
            except ssl.SSLError as exc:
                raise ProxyError(
                    f"TLS handshake with HTTPS proxy {proxy.url} failed: {exc}", proxy=proxy.url
                ) from exc
        _tunnel(stream, route, deadline.remaining)
    except BaseException:
        stream.close()
        raise
    return stream


_STATUS_LINE = re.compile(r"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: (.*))?")


def _tunnel(stream: Any, route: Route, remaining: Any) -> None:
    """Ask the proxy for a CONNECT tunnel to the server.

    Raises :class:`InvalidProxyMessage` for an answer that is not HTTP and
    :class:`InvalidProxyStatus` (with ``.response``) for a refusal.
    """
    proxy = route.proxy
    assert proxy is not None
    target = f"[{route.host}]:{route.port}" if ":" in route.host else f"{route.host}:{route.port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if route.user_agent is not None:
        lines.append(f"User-Agent: {route.user_agent}")
    if proxy.username is not None:
        credentials = f"{proxy.username}:{proxy.password or ''}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(credentials).decode())
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
    status = int(match.group(1))
    reason = match.group(2) or ""
    if 200 <= status < 300:
        return
    headers: requests.structures.CaseInsensitiveDict[str] = (
        requests.structures.CaseInsensitiveDict()
    )
    for line in header_block.split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name, value = name.strip(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    response.headers = headers
    response.url = proxy.url
    response._content = b""
    message = f"proxy {proxy.url} refused CONNECT to {target}: {status} {reason}".rstrip()
    if status == 407:
        challenge = headers.get("proxy-authenticate", "")
        if proxy.username is None:
            message += (
                " (the proxy requires authentication: put user:password in the proxy URL, "
                f"e.g. {proxy.scheme}://user:password@{proxy.host}:{proxy.port})"
            )
        else:
            message += f" (the proxy rejected the credentials of user {proxy.username!r})"
        if challenge:
            schemes = [piece.strip().split(" ")[0] for piece in challenge.split(",")]
            shown = [scheme for scheme in schemes if scheme and "=" not in scheme]
            message += f"; it asked for: {', '.join(shown) or challenge}"
    elif status == 403:
        message += " (the proxy's policy forbids this tunnel; many allow CONNECT only to port 443)"
    raise InvalidProxyStatus(response, message, proxy=proxy.url)


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
                raise OSError("the proxy closed the connection")
            raise InvalidProxyMessage(
                f"the proxy closed the connection in the middle of its answer to CONNECT: "
                f"{bytes(data[:100])!r}"
            )
        data += byte
    return data.decode("latin-1")
