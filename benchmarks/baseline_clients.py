"""The two reference clients of the client benchmark, written in the script's terms.

* :class:`RawClient` -- the physical limit of a Python socket: zero mask key
  (so no XOR), frames parsed out of one growing bytearray, no control frames,
  no fragments, no validation. Not a correct client; it bounds what any
  client could reach.
* :class:`MinimalClient` -- the smallest *correct* single-threaded client:
  a fresh random mask key per frame (``os.urandom``, as RFC 6455 section 5.3
  asks) applied with ``requests_ws.masking.apply_mask``, reads with
  ``recv_into`` into one preallocated buffer, fragments assembled, pings
  answered, the closing handshake done, permessage-deflate with context
  takeover when asked. No threads, no timeouts, no validation beyond framing.
  The issue's round-trip targets are ratios to this client.

Both speak only to the benchmark's local echo server (127.0.0.1).
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import zlib

from requests_ws.masking import apply_mask

__all__ = ["MinimalClient", "RawClient"]

_DEFLATE_TAIL = b"\x00\x00\xff\xff"
# A frame whose payload is at least this large is written as header + payload
# (two sendall calls) rather than copied into one buffer.
_LARGE_WRITE = 65536


def _upgrade_request(key: str, deflate: bool) -> bytes:
    extension = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
    return (
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extension}\r\n"
    ).encode()


def _frame_header(first: int, masked: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, masked | length))
    if length < 65536:
        return struct.pack("!BBH", first, masked | 126, length)
    return struct.pack("!BBQ", first, masked | 127, length)


class RawClient:
    """WebSocket with trivial framing: zero mask key, no validation, no threads."""

    def __init__(self, port: int, deflate: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(_upgrade_request("dGhlIHNhbXBsZSBub25jZQ==", deflate))
        self.buffer = bytearray()
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection during the handshake")
            self.buffer += chunk
        end = self.buffer.index(b"\r\n\r\n") + 4
        del self.buffer[:end]
        self.deflate = deflate
        self.compressor = zlib.compressobj(wbits=-15)
        self.decompressor = zlib.decompressobj(wbits=-15)

    def send_text(self, text: str) -> None:
        self.send(text.encode(), opcode=1)

    def send(self, data: bytes, opcode: int = 2) -> None:
        first = 0x80 | opcode
        if self.deflate:
            data = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
            data = data[:-4]
            first |= 0x40
        header = _frame_header(first, 0x80, len(data)) + b"\0\0\0\0"
        if len(data) < _LARGE_WRITE:
            self.sock.sendall(header + data)
        else:
            self.sock.sendall(header)
            self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, min(n - len(self.buffer), 1 << 20)))
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buffer += chunk

    def recv(self) -> bytes:
        self._fill(2)
        first, length = self.buffer[0], self.buffer[1] & 0x7F
        offset = 2
        if length == 126:
            self._fill(4)
            length = struct.unpack_from("!H", self.buffer, 2)[0]
            offset = 4
        elif length == 127:
            self._fill(10)
            length = struct.unpack_from("!Q", self.buffer, 2)[0]
            offset = 10
        if length > 65536:
            # Bulk: read straight into the final buffer.
            target = bytearray(length)
            have = min(len(self.buffer) - offset, length)
            target[:have] = self.buffer[offset : offset + have]
            del self.buffer[: offset + have]
            view = memoryview(target)
            while have < length:
                n = self.sock.recv_into(view[have:], min(length - have, 1 << 20))
                if not n:
                    raise EOFError("the server closed the connection")
                have += n
            data = bytes(target)
        else:
            self._fill(offset + length)
            data = bytes(self.buffer[offset : offset + length])
            del self.buffer[: offset + length]
        if first & 0x40:
            data = self.decompressor.decompress(data + _DEFLATE_TAIL)
        return data

    def close(self) -> None:
        try:
            self.sock.sendall(b"\x88\x82\0\0\0\0\x03\xe8")
            self._fill(2)
        except (EOFError, OSError):
            pass
        self.sock.close()


class MinimalClient:
    """The smallest correct single-threaded WebSocket client (see the module docstring)."""

    def __init__(self, port: int, deflate: bool = False, buffer_size: int = 65536) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buffer = bytearray(buffer_size)
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0
        sock.sendall(_upgrade_request(base64.b64encode(os.urandom(16)).decode(), deflate))
        while True:
            self._receive()
            head_end = self._buffer.find(b"\r\n\r\n", 0, self._end)
            if head_end >= 0:
                break
        head = bytes(self._buffer[:head_end]).lower()
        if not head.startswith(b"http/1.1 101"):
            sock.close()
            raise ConnectionError(f"upgrade refused: {head.splitlines()[0]!r}")
        self._start = head_end + 4
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        if deflate and b"permessage-deflate" in head:
            self._compressor = zlib.compressobj(wbits=-15)
            self._decompressor = zlib.decompressobj(wbits=-15)
        self.closed = False

    # -- reading ------------------------------------------------------------

    def _receive(self) -> None:
        """Read once from the socket into the free end of the buffer."""
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buffer):
            pending = self._end - self._start
            self._buffer[:pending] = self._buffer[self._start : self._end]  # a copy: no overlap
            self._start, self._end = 0, pending
        n = self._sock.recv_into(self._view[self._end :])
        if not n:
            raise EOFError("the server closed the connection")
        self._end += n

    def _need(self, n: int) -> int:
        """Make ``n`` bytes (at most the buffer's size) available; return where they start."""
        while self._end - self._start < n:
            if self._start + n > len(self._buffer):
                pending = self._end - self._start
                self._buffer[:pending] = self._buffer[self._start : self._end]  # a copy: no overlap
                self._start, self._end = 0, pending
            self._receive()
        return self._start

    def _read_frame(self) -> tuple[int, bytes | bytearray]:
        """Return (first header byte, payload) of the next frame."""
        buffer = self._buffer
        start = self._start
        if self._end - start < 2:
            start = self._need(2)
        first = buffer[start]
        length = buffer[start + 1] & 0x7F
        header = 2
        if length == 126:
            start = self._need(4)
            length = (buffer[start + 2] << 8) | buffer[start + 3]
            header = 4
        elif length == 127:
            start = self._need(10)
            length = int.from_bytes(buffer[start + 2 : start + 10], "big")
            header = 10
        total = header + length
        if total <= len(buffer):
            if self._end - start < total:
                start = self._need(total)
            self._start = start + total
            return first, buffer[start + header : start + total]
        # Larger than the buffer: read the payload straight into its own buffer.
        payload = bytearray(length)
        have = self._end - start - header
        payload[:have] = self._view[start + header : self._end]
        self._start = self._end = 0
        view = memoryview(payload)
        while have < length:
            n = self._sock.recv_into(view[have:])
            if not n:
                raise EOFError("the server closed the connection")
            have += n
        return first, payload

    def recv(self) -> str | bytes:
        """Return the next message: ``str`` for text, ``bytes`` (or a bytearray) for binary."""
        pieces: list[bytes | bytearray] = []
        opcode = 0
        compressed = False
        while True:
            first, payload = self._read_frame()
            frame_opcode = first & 0x0F
            if frame_opcode >= 8:
                self._control(frame_opcode, payload)
                continue
            if frame_opcode:
                opcode = frame_opcode
                compressed = bool(first & 0x40)
            pieces.append(payload)
            if first & 0x80:
                break
        message = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if compressed and self._decompressor is not None:
            message = self._decompressor.decompress(message + _DEFLATE_TAIL)
        if opcode == 1:
            return message.decode()
        return bytes(message) if len(message) < 65536 else message  # type: ignore[return-value]

    def _control(self, opcode: int, payload: bytes | bytearray) -> None:
        if opcode == 9:
            self._write(0x8A, bytes(payload))
        elif opcode == 8:
            if not self.closed:
                self._write(0x88, bytes(payload[:2]))
                self.closed = True
            self._sock.close()
            raise EOFError("the server closed the connection")

    # -- writing ------------------------------------------------------------

    def _write(self, first: int, payload: bytes) -> None:
        key = os.urandom(4)
        header = _frame_header(first, 0x80, len(payload)) + key
        masked = apply_mask(payload, key)
        if len(payload) < _LARGE_WRITE:
            self._sock.sendall(header + masked)
        else:
            self._sock.sendall(header)
            self._sock.sendall(masked)

    def send(self, message: str | bytes) -> None:
        """Send ``str`` as a text message and bytes as a binary one, in one frame."""
        if isinstance(message, str):
            payload = message.encode()
            first = 0x81
        else:
            payload = message
            first = 0x82
        if self._compressor is not None:
            payload = self._compressor.compress(payload) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
            payload = payload[:-4]
            first |= 0x40
        self._write(first, payload)

    def close(self) -> None:
        """Send a 1000 close frame, wait for the server's, close the socket."""
        if self.closed:
            return
        self._write(0x88, b"\x03\xe8")
        self.closed = True
        try:
            while True:
                first, _ = self._read_frame()
                if first & 0x0F == 8:
                    break
        except (EOFError, OSError):
            pass
        self._sock.close()
