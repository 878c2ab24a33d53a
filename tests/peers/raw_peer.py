"""A scripted raw peer: it does the server side of the handshake by hand,
then runs a test's script frame by frame, so tests can break the protocol."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class RawFrame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes
    masked: bool


def frame_bytes(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, length: int | None = None
) -> bytes:
    """An unmasked server frame; ``length`` lies about the payload length."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv | opcode
    if n < 126:
        header = struct.pack("!BB", first, n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class RawPeer:
    """One accepted connection, driven by a test script."""

    def __init__(self, sock: socket.socket, request: bytes) -> None:
        self.sock = sock
        self.request = request
        self.buffer = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes = b"", **kwargs: Any) -> None:
        self.sock.sendall(frame_bytes(opcode, payload, **kwargs))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(0x8, close_payload(code, reason))

    def _read(self, n: int, timeout: float) -> bytes:
        self.sock.settimeout(timeout)
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("client closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def recv_frame(self, timeout: float = 5.0) -> RawFrame:
        first, second = self._read(2, timeout)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2, timeout))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8, timeout))
        masked = bool(second & 0x80)
        mask = self._read(4, timeout) if masked else b"\0\0\0\0"
        data = self._read(length, timeout)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data)) if masked else data
        return RawFrame(bool(first & 0x80), first & 0x70, first & 0x0F, payload, masked)

    def recv_message(self, timeout: float = 5.0) -> RawFrame:
        """The next data frame, skipping pongs."""
        while True:
            frame = self.recv_frame(timeout)
            if frame.opcode != 0xA:
                return frame

    def expect_close(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Read frames until the client's close frame; return its code and reason."""
        while True:
            frame = self.recv_frame(timeout)
            if frame.opcode == 0x8:
                if len(frame.payload) >= 2:
                    return struct.unpack("!H", frame.payload[:2])[0], frame.payload[2:].decode()
                return None, ""

    def wait_eof(self, timeout: float = 5.0) -> bool:
        """Wait for the client to close TCP; True if it did."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (TimeoutError, OSError):
            return False
        return True


Script = Callable[[RawPeer], None]


class RawServer:
    """Accepts connections and runs ``script`` on each after the handshake."""

    def __init__(
        self,
        script: Script,
        *,
        ssl_context: ssl.SSLContext | None = None,
        status: bytes = b"101 Switching Protocols",
        headers: dict[str, str] | None = None,
        accept: str | None = None,
        first_bytes: bytes = b"",
        drop_headers: tuple[str, ...] = (),
    ) -> None:
        self.script = script
        self.ssl_context = ssl_context
        self.status = status
        self.extra_headers = headers or {}
        self.accept = accept
        self.first_bytes = first_bytes
        self.drop_headers = {name.lower() for name in drop_headers}
        self.requests: list[bytes] = []
        self.errors: list[BaseException] = []
        self.done = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._accepter = threading.Thread(target=self._accept, name="test-server-raw", daemon=True)
        self._accepter.start()

    @property
    def uri(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        host = "localhost" if self.ssl_context is not None else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/"

    def _accept(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(sock,), name="test-server-raw-conn", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            sock.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                request += chunk
            head, _, rest = request.partition(b"\r\n\r\n")
            self.requests.append(head)
            key = ""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "sec-websocket-key":
                    key = value.strip()
            accept = (
                self.accept or base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            )
            headers = {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Accept": accept,
            }
            headers.update(self.extra_headers)
            lines = [b"HTTP/1.1 " + self.status]
            lines += [
                f"{name}: {value}".encode()
                for name, value in headers.items()
                if name.lower() not in self.drop_headers
            ]
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + self.first_bytes)
            if not self.status.startswith(b"101"):
                return
            peer = RawPeer(sock, head)
            peer.buffer = rest
            self.script(peer)
        except BaseException as exc:  # surfaced by check()
            self.errors.append(exc)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            self.done.set()

    def check(self) -> None:
        """Re-raise the first error a script hit."""
        if self.errors:
            raise self.errors[0]

    def stop(self) -> None:
        self._stopping = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()
        for thread in self._threads:
            thread.join(10)
        self._accepter.join(10)


def random_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()
