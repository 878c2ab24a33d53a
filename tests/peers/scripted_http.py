"""A scripted HTTP peer for the opening: each accepted connection's request
head is read, recorded, and handed to a test's handler, which answers however
the test needs (trickling bytes, redirects, junk, a 101), as a server or as a
proxy answering CONNECT."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Handler = Callable[[socket.socket, bytes], None]


def header(head: bytes, name: str) -> str | None:
    """The value of header ``name`` in a request head (first one), or None."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.decode("latin-1").partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def request_target(head: bytes) -> str:
    return head.split(b"\r\n", 1)[0].split(b" ")[1].decode()


def switching_protocols(head: bytes, extra: str = "") -> bytes:
    """The 101 answer to the upgrade request ``head``."""
    key = header(head, "Sec-WebSocket-Key") or ""
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    ).encode()


class ScriptedHTTPServer:
    """Listens on 127.0.0.1; runs ``handler(sock, head)`` for each connection.

    ``tls`` wraps each accepted socket first (the handshake is done in the
    connection's thread, so a handler can also stall it with ``raw_tls``:
    then the handler gets the plain socket and an empty head).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        raw_tls: bool = False,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.raw_tls = raw_tls
        self.heads: list[bytes] = []
        self.errors: list[BaseException] = []
        self.stop_event = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, name="test-http", daemon=True)
        self._accepter.start()

    def uri(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "wss" if self.tls is not None else "ws"
        return f"{scheme}://{host}:{self.port}{path}"

    @property
    def connections(self) -> int:
        return len(self._threads)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self._sockets.append(sock)
            thread = threading.Thread(
                target=self._serve, args=(sock,), name="test-http-conn", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(10)
            if self.raw_tls:
                self.handler(sock, b"")
                return
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(1)
                if not chunk:
                    return
                head += chunk
            self.heads.append(head)
            self.handler(sock, head)
        except (OSError, ssl.SSLError):
            pass  # the client gave up: what these tests provoke
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def trickle(self, sock: socket.socket, data: bytes, interval: float = 0.2) -> None:
        """Send ``data`` one byte every ``interval`` s, until done or stopped."""
        for index in range(len(data)):
            if self.stop_event.wait(interval):
                return
            sock.sendall(data[index : index + 1])

    def stop(self) -> None:
        self.stop_event.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(10)
        self._accepter.join(10)
        if self.errors:
            raise self.errors[0]
