"""A scripted WebSocket server on one end of a socket pair.

The conformance cases drive the real :class:`ClientConnection` with it: the
client end goes to ``requests_ws.connect(..., sock=)``; this end answers the
opening handshake by hand (with the permessage-deflate answer a case chooses),
writes the case's bytes as the case delivers them (whole, frame by frame, octet
by octet, pausing until the client has written some frames, or calling back
into the test between two writes), and reads back
every byte the client writes until its close frame; then it ends its own
stream, as a server does, and reads on until the client's end of stream.

Every wait is bounded by ``timeout``; nothing here sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests_ws
from requests_ws import ClientConnection

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CLOSE = 0x8


@dataclass(frozen=True)
class AwaitFrames:
    """A pause in a delivery: write nothing more until the client has written
    ``count`` frames in all (data and control frames alike)."""

    count: int


@dataclass(frozen=True)
class Call:
    """A step in a delivery: call ``function`` (from the server's writer
    thread) before writing on, e.g. to let the application go on."""

    function: Callable[[], object]


Piece = bytes | AwaitFrames | Call


def accept_value(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def client_frame_end(data: bytes | bytearray, start: int) -> int | None:
    """Where the client frame that begins at ``start`` ends, None if incomplete."""
    if len(data) - start < 2:
        return None
    length = data[start + 1] & 0x7F
    offset = start + 2
    if length >= 126:
        size = 2 if length == 126 else 8
        if len(data) - offset < size:
            return None
        length = int.from_bytes(data[offset : offset + size], "big")
        offset += size
    if data[start + 1] & 0x80:
        offset += 4
    end = offset + length
    return end if end <= len(data) else None


class PairedServer:
    """The server's side of one connection over :func:`socket.socketpair`."""

    def __init__(self, *, extensions: str | None = None, timeout: float = 10.0) -> None:
        self.server, self.client = socket.socketpair()
        self.server.settimeout(timeout)
        self.timeout = timeout
        self.extensions = extensions
        self.request = b""
        # Everything the client wrote after the handshake.
        self.received = bytearray()
        self.frames = 0
        self.close_seen = False
        self.eof = False
        self.problems: list[str] = []
        self._parsed = 0
        self._handed_over = False
        self._cond = threading.Condition()

    # -- the opening handshake ------------------------------------------------

    def connect(self, first_bytes: bytes = b"", **kwargs: Any) -> ClientConnection:
        """``requests_ws.connect`` over the client end while this end answers
        the handshake; ``first_bytes`` go out in the same write as the 101."""
        answering = threading.Thread(
            target=self._answer_handshake, args=(first_bytes,), name="test-paired-handshake"
        )
        answering.start()
        try:
            connection = requests_ws.connect(
                "ws://localhost/", sock=self.client, proxy=None, **kwargs
            )
        finally:
            answering.join(self.timeout)
        self._handed_over = True  # the connection owns the client end now
        return connection

    def _answer_handshake(self, first_bytes: bytes) -> None:
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = self.server.recv(4096)
                if not chunk:
                    self.problems.append("the client closed during the handshake")
                    return
                request += chunk
            head, _, rest = request.partition(b"\r\n\r\n")
            self.request = head
            if rest:
                self.received += rest
            key = b""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            lines = [
                b"HTTP/1.1 101 Switching Protocols",
                b"Upgrade: websocket",
                b"Connection: Upgrade",
                b"Sec-WebSocket-Accept: " + accept_value(key),
            ]
            if self.extensions is not None:
                lines.append(b"Sec-WebSocket-Extensions: " + self.extensions.encode())
            self.server.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + first_bytes)
        except OSError as exc:
            self.problems.append(f"handshake: {exc!r}")

    # -- the conversation -------------------------------------------------------

    def play(self, pieces: Sequence[Piece]) -> bytes:
        """Write ``pieces`` (from a thread of their own) while reading the
        client; return every byte the client wrote, once its stream ended."""
        writer = threading.Thread(target=self._write, args=(pieces,), name="test-paired-writer")
        writer.start()
        try:
            self._read(writer)
        finally:
            try:
                self.server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            writer.join(self.timeout)
            with self._cond:
                self.eof = True
                self._cond.notify_all()
            if writer.is_alive():
                self.problems.append("the server's writer did not finish")
        return bytes(self.received)

    def _write(self, pieces: Sequence[Piece]) -> None:
        try:
            for piece in pieces:
                if isinstance(piece, AwaitFrames):
                    if not self._await_frames(piece.count):
                        return
                elif isinstance(piece, Call):
                    piece.function()
                else:
                    self.server.sendall(piece)
        except OSError:
            # The client may end the connection before the case is written
            # out; the case judges what the client wrote.
            pass

    def _await_frames(self, count: int) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self.frames >= count or self.eof, self.timeout)
            if self.frames >= count:
                return True
            self.problems.append(f"waited for {count} client frames, got {self.frames}")
            return False

    def _read(self, writer: threading.Thread) -> None:
        deadline = time.monotonic() + self.timeout
        ended_ours = False
        while True:
            if self.close_seen and not ended_ours:
                # The server has the client's close frame: once the case is
                # written, it ends its stream (RFC 6455 7.1.1).
                writer.join(max(deadline - time.monotonic(), 0))
                try:
                    self.server.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                ended_ours = True
            if time.monotonic() > deadline:
                self.problems.append(f"the connection did not end within {self.timeout} s")
                return
            try:
                chunk = self.server.recv(262144)
            except TimeoutError:
                self.problems.append(f"the client wrote nothing for {self.timeout} s")
                return
            except OSError as exc:
                self.problems.append(f"reading the client: {exc!r}")
                return
            if not chunk:
                with self._cond:
                    self.eof = True
                    self._cond.notify_all()
                return
            self.received += chunk
            self._count_frames()

    def _count_frames(self) -> None:
        with self._cond:
            data = self.received
            while True:
                end = client_frame_end(data, self._parsed)
                if end is None:
                    break
                if data[self._parsed] & 0x0F == _CLOSE:
                    self.close_seen = True
                self._parsed = end
                self.frames += 1
            self._cond.notify_all()

    def close(self) -> None:
        self.server.close()
        if not self._handed_over:
            self.client.close()
