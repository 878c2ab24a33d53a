"""The only module that talks to requests and urllib3.

INTERFACE STUB: being implemented. The signature below is the contract that
client.py relies on.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl as ssl_module
from collections.abc import Mapping
from typing import Any, Protocol

import requests

__all__ = ["SocketLike", "Upgraded", "open_upgraded"]


class SocketLike(Protocol):
    """What the connection needs from the upgraded stream.

    A socket.socket, ssl.SSLSocket, socks.socksocket or urllib3's SSLTransport.
    """

    def recv(self, bufsize: int) -> bytes: ...
    def recv_into(self, buffer: Any, nbytes: int = ...) -> int: ...
    def sendall(self, data: Any) -> Any: ...
    def settimeout(self, value: float | None) -> None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


@dataclasses.dataclass
class Upgraded:
    """The result of a successful upgrade request (status 101)."""

    sock: SocketLike            # the stream to speak WebSocket over, now owned by the caller
    raw_socket: socket.socket   # the OS-level socket under it (for shutdown, addresses, select)
    leftover: bytes             # bytes already read past the 101 response, to feed first
    request: requests.PreparedRequest  # the request that got the 101 (after redirects/auth)
    response: requests.Response        # the 101 response; its raw stream is detached


def open_upgraded(
    session: requests.Session,
    uri: str,
    *,
    headers: Mapping[str, str],
    requests_kwargs: Mapping[str, Any],
    sock: socket.socket | None = None,
    unix_path: str | None = None,
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    proxy: str | bool | None = True,
    proxy_ssl: ssl_module.SSLContext | None = None,
    proxy_server_hostname: str | None = None,
    open_timeout: float | None = 10,
) -> Upgraded:
    """Send the upgrade request through the session and return the upgraded stream."""
    raise NotImplementedError
