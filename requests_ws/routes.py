"""How the bytes reach the server: direct TCP, a given socket, AF_UNIX,
an HTTP or HTTPS proxy (always a CONNECT tunnel, for ``ws://`` too), or a
SOCKS proxy; then TLS, or TLS inside the proxy's TLS.

:func:`select_route` decides from the URL, the session's settings and the
caller's options; :func:`open_stream` opens it within a timeout and turns
every failure into the exception a requests user expects, naming the host
or proxy at fault.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import ssl
import time
import urllib.parse
from typing import Any

import requests
import requests.utils
from requests.utils import DEFAULT_CA_BUNDLE_PATH, extract_zipped_paths
from urllib3.util.ssltransport import SSLTransport

from .exceptions import ProxyError

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
        return cls(scheme, parts.hostname, port, username, password)


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
) -> Route:
    """Decide how to reach ``url`` (an ``http(s)://`` URL)."""
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
    )
    if sock is not None or unix_path is not None or proxy is None or proxy is False:
        return route
    if proxy is True:
        proxy_url = requests.utils.select_proxy(url, proxies)
    else:
        proxy_url = proxy
    if not proxy_url:
        return route
    route.proxy = Proxy.parse(proxy_url)
    if route.proxy.scheme == "https":
        route.proxy.ssl_context = proxy_ssl if proxy_ssl is not None else tls_context(verify)
        route.proxy.server_hostname = proxy_server_hostname or route.proxy.host
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
    elif route.proxy is None:
        stream = _connect_tcp(route.host, route.port, remaining())
    elif route.proxy.scheme.startswith("socks"):
        stream = _connect_socks(route, remaining())
    else:
        stream = _connect_http_proxy(route, remaining)
    try:
        if route.tls is not None:
            stream.settimeout(remaining())
            stream = _start_tls(stream, route)
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


def _start_tls(stream: Any, route: Route) -> Any:
    context = route.tls
    assert context is not None
    try:
        if isinstance(stream, ssl.SSLSocket):
            # TLS inside the HTTPS proxy's TLS.
            return SSLTransport(stream, context, server_hostname=route.server_hostname)
        return context.wrap_socket(stream, server_hostname=route.server_hostname)
    except ssl.SSLCertVerificationError as exc:
        raise requests.exceptions.SSLError(
            f"TLS certificate verification of {route.server_hostname}:{route.port} failed: "
            f"{exc.verify_message or exc}"
        ) from exc
    except ssl.SSLError as exc:
        raise requests.exceptions.SSLError(
            f"TLS handshake with {route.server_hostname}:{route.port} failed: {exc}"
        ) from exc
    except TimeoutError:
        raise
    except OSError as exc:
        raise _connection_error(f"{route.host}:{route.port} (during TLS)", exc) from exc


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
    proxy = route.proxy
    assert proxy is not None
    try:
        stream: Any = socket.create_connection((proxy.host, proxy.port), remaining())
    except TimeoutError:
        raise
    except OSError as exc:
        raise ProxyError(f"cannot connect to proxy {proxy.url}: {exc}", proxy=proxy.url) from exc
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if proxy.scheme == "https":
            assert proxy.ssl_context is not None
            try:
                stream = proxy.ssl_context.wrap_socket(
                    stream, server_hostname=proxy.server_hostname
                )
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
        _tunnel(stream, route, remaining)
    except BaseException:
        stream.close()
        raise
    return stream


def _tunnel(stream: Any, route: Route, remaining: Any) -> None:
    """Ask the proxy for a CONNECT tunnel to the server; raise ProxyError if refused."""
    proxy = route.proxy
    assert proxy is not None
    target = f"[{route.host}]:{route.port}" if ":" in route.host else f"{route.host}:{route.port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
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
    except OSError as exc:
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
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    if 200 <= status < 300:
        return
    headers = {}
    for line in header_block.split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
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
            message += f"; it asked for: {challenge}"
    elif status == 403:
        message += " (the proxy's policy forbids this tunnel; many allow CONNECT only to port 443)"
    raise ProxyError(message, proxy=proxy.url, status=status, reason=reason)


def _read_head(stream: Any, remaining: Any) -> str:
    """Read the proxy's answer up to the blank line, not a byte further."""
    data = bytearray()
    while not data.endswith(b"\r\n\r\n"):
        if len(data) > _MAX_CONNECT_RESPONSE:
            raise OSError("answer to CONNECT too long")
        stream.settimeout(remaining())
        byte = stream.recv(1)
        if not byte:
            raise OSError("the proxy closed the connection")
        data += byte
    return data.decode("latin-1")
