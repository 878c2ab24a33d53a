"""The sans-I/O client protocol of RFC 6455: bytes in, events out; calls in,
bytes out.

:class:`ClientProtocol` owns the rules of an open connection. It parses the
server's frames, enforces every input rule of RFC 6455 section 5, validates
text incrementally (an invalid byte fails the connection in the read that
brings it, not when the message ends), applies the negotiated extensions and
``max_size``, and serializes the client's frames. It never touches a socket,
a thread or a clock: the connection layer feeds it and acts on its events.

Events, in the order the bytes arrived:

* :class:`Fragment` -- a piece of a data message (text pieces already decoded);
* :class:`Ping`, :class:`Pong` -- control frames;
* :class:`CloseReceived` -- the server's close frame;
* :class:`Failure` -- the server broke the protocol; nothing after it is parsed.
  The connection should send the close frame it describes (``fail``) once the
  application has consumed the events before it.

States: ``OPEN`` until the client sends a close frame, ``CLOSING`` until the
closing handshake completes or the stream ends, ``CLOSED`` after that.
"""

from __future__ import annotations

import codecs
import dataclasses
import enum
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .buffers import payload_buffer, take_payload
from .errors import InvalidState, PayloadTooBig, ProtocolError
from .extensions.permessage_deflate import PerMessageDeflate
from .frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Close,
    CloseCode,
    Frame,
    MaskedPayload,
    masked_header,
    serialize_frame,
    serialize_frame_parts,
)
from .masking import apply_mask

if TYPE_CHECKING:
    from .extensions.base import Extension

__all__ = [
    "State",
    "Fragment",
    "Ping",
    "Pong",
    "CloseReceived",
    "Failure",
    "Event",
    "ClientProtocol",
    "InvalidState",
]

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class State(enum.IntEnum):
    """Where the connection is in its life (RFC 6455 section 4 and 7)."""

    OPEN = 1
    CLOSING = 2
    CLOSED = 3


_OPEN = State.OPEN


@dataclasses.dataclass(slots=True)
class Fragment:
    """A piece of a data message: one frame, or the part of a large frame read so far.

    ``data`` is ``str`` for a text message (validated and decoded) and
    ``bytes`` for a binary one. ``first`` marks the first piece of a message
    and ``fin`` the last.
    """

    data: str | bytes
    is_text: bool
    first: bool
    fin: bool


@dataclasses.dataclass(slots=True)
class Ping:
    """A ping from the server; it expects a pong with the same payload."""

    data: bytes


@dataclasses.dataclass(slots=True)
class Pong:
    """A pong from the server."""

    data: bytes


@dataclasses.dataclass(slots=True)
class CloseReceived:
    """The server's close frame."""

    close: Close


@dataclasses.dataclass(slots=True)
class Failure:
    """The server broke the protocol: close with ``code`` and ``reason``.

    ``error`` is the exception that says why (:class:`ProtocolError`,
    :class:`PayloadTooBig` or :class:`UnicodeDecodeError`); it becomes the
    ``__cause__`` of the :class:`ConnectionClosedError` the caller sees.
    """

    error: Exception
    code: int
    reason: str


Event = Fragment | Ping | Pong | CloseReceived | Failure

# Frames at least this large are read into a buffer of their own.
_DIRECT_THRESHOLD = 65536
# Without max_size, a header alone must not make us allocate more than this
# up front: larger frames are buffered as their bytes arrive.
_DIRECT_UNBOUNDED_MAX = 2**26
_KNOWN_OPCODES = frozenset({OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})
_MAX_REASON_BYTES = 123
# Bytes of os.urandom drawn at once for masking keys (256 keys).
_MASK_POOL = 1024
# The two header bytes of a final, masked TEXT or BINARY frame under 126
# bytes, by opcode and length.
_SMALL_HEADERS: dict[int, list[bytes]] = {
    opcode: [bytes((0x80 | opcode, 0x80 | length)) for length in range(126)]
    for opcode in (OP_TEXT, OP_BINARY)
}


def _reason_for(error: Exception) -> str:
    """A close reason that fits in a control frame (123 bytes of UTF-8)."""
    if isinstance(error, UnicodeDecodeError):
        text = f"invalid UTF-8 at byte {error.start} of the data read"
    else:
        text = str(error)
    encoded = text.encode()
    if len(encoded) <= _MAX_REASON_BYTES:
        return text
    return encoded[: _MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def _check_pending_utf8(decoder: codecs.IncrementalDecoder) -> None:
    """Fail fast on a UTF-16 surrogate (ED A0-BF) held back by the decoder.

    CPython's incremental decoder waits for the third byte of such a sequence
    before rejecting it, although the second byte already rules it out.
    """
    pending = decoder.getstate()[0]
    if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
        raise UnicodeDecodeError("utf-8", pending, 0, 2, "invalid continuation byte")


class ClientProtocol:
    """The client side of one WebSocket connection, without I/O.

    Feed received bytes with :meth:`receive_data` and the end of the stream
    with :meth:`receive_eof`; collect events with :meth:`events_received`.
    The ``send_*`` methods return the bytes to write, in order.

    ``max_size`` bounds a message's size after decompression (``None``: no
    limit); ``extensions`` are the negotiated extensions, in the order the
    server accepted them.
    """

    def __init__(
        self,
        *,
        max_size: int | None = 2**20,
        extensions: Sequence[Extension] = (),
    ) -> None:
        self.max_size = max_size
        self.extensions = list(extensions)
        # permessage-deflate alone (the common case): its codec is called on
        # a frame's parts, with no Frame object per frame.
        self._deflate: PerMessageDeflate | None = None
        if len(self.extensions) == 1 and type(self.extensions[0]) is PerMessageDeflate:
            self._deflate = self.extensions[0]
        self.state = State.OPEN
        self.close_rcvd: Close | None = None
        self.close_sent: Close | None = None
        self.close_rcvd_then_sent: bool | None = None
        # The first exception that failed the connection, if any.
        self.failure: Failure | None = None
        self.eof_received = False

        self._events: list[Event] = []
        self._buffer = bytearray()
        # Receiving state of the current data message.
        self._in_message = False
        self._message_is_text = False
        self._message_compressed = False
        self._message_size = 0
        self._message_frames = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        # Bytes of the current, incomplete, uncompressed text frame already
        # validated (fail-fast UTF-8 over several reads).
        self._partial_checked = 0
        self._partial_text: list[str] = []
        # A large frame being received straight into its own buffer:
        # (payload buffer, bytes filled, opcode, fin, rsv).
        # (payload buffer, bytes filled, opcode, fin, rsv, what the payload
        # is taken from: see buffers.py).
        self._direct: tuple[memoryview, int, int, bool, int, Any] | None = None
        # Sending state: inside a fragmented message?
        self._sending_fragments = False
        self._receive_stopped = False
        self._mask_pool = b""
        self._mask_position = 0

    @property
    def sending_fragments(self) -> bool:
        """True between the first and the last frame of a fragmented message sent."""
        return self._sending_fragments

    # -- receiving ---------------------------------------------------------

    def events_received(self) -> list[Event]:
        """Return the events parsed since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Parse ``data`` received from the server."""
        if self._receive_stopped:
            return
        if self._direct is not None:
            target, filled = self._direct[0], self._direct[1]
            take = min(len(target) - filled, len(data))
            view = memoryview(data)  # slices without copies
            target[filled : filled + take] = view[:take]
            self.direct_received(take)
            if take == len(data) or self._receive_stopped:
                return
            data = view[take:]
        buffer = self._buffer
        if not buffer:
            # Parse straight from the caller's bytes; keep only an incomplete tail.
            view = data if isinstance(data, memoryview) else memoryview(data)
            try:
                consumed = self._parse_view(view, view)
            except (ProtocolError, PayloadTooBig, UnicodeDecodeError) as exc:
                self._record_failure(exc)
                return
            if consumed < len(view):
                self._buffer = bytearray(view[consumed:])
            return
        buffer += data
        try:
            consumed = self._parse(buffer)
        except (ProtocolError, PayloadTooBig, UnicodeDecodeError) as exc:
            self._buffer = bytearray()
            self._record_failure(exc)
            return
        if consumed:
            if consumed == len(buffer):
                self._buffer = bytearray()
            else:
                del buffer[:consumed]

    def receive_message(self, data: memoryview) -> str | bytes | None:
        """Parse ``data``; when it is exactly one whole, unfragmented, small
        text or binary frame with nothing received before it, return that
        message instead of queueing an event (the common case, in fewer steps).

        Otherwise behave as :meth:`receive_data` and return None.
        """
        end = len(data)
        if (
            end >= 2
            and not self._buffer
            and not self._in_message
            and self._direct is None
            and not self._receive_stopped
            and self._decoder is None
            and not self.extensions
        ):
            first = data[0]
            length = data[1]  # also the mask bit: a masked frame is not matched
            start = 2
            if length >= 126:
                if length == 126 and end >= 4:
                    length = (data[2] << 8) | data[3]
                    start = 4
                    if length < 126:
                        length = -1  # non-minimal: receive_data says why
                else:
                    length = -1
            max_size = self.max_size
            if (
                start + length == end
                and (first == 0x81 or first == 0x82)
                and length < 65536
                and (max_size is None or length <= max_size)
            ):
                if first == 0x82:
                    return bytes(data[start:])
                try:
                    return str(data[start:], "utf-8")
                except UnicodeDecodeError:
                    pass  # receive_data fails the connection with the details
        self.receive_data(data)
        return None

    def direct_buffer(self) -> memoryview | None:
        """Where the rest of a large frame's payload should be read, if anywhere.

        While a large data frame is incomplete, the I/O layer may read the
        socket straight into this buffer (``recv_into``) and then call
        :meth:`direct_received`; ``receive_data`` works too.

        The one thread that feeds the protocol may call this without the
        lock that guards the other calls: only feeding sets the large frame,
        and other threads only ever drop it (:meth:`fail`,
        :meth:`receive_eof`), after which :meth:`direct_received` ignores
        what was read.
        """
        direct = self._direct  # read once: another thread may drop it
        if direct is None or self._receive_stopped:
            return None
        return memoryview(direct[0])[direct[1] :]

    def direct_received(self, size: int) -> None:
        """``size`` more bytes were written into :meth:`direct_buffer`."""
        if self._receive_stopped:
            return
        try:
            self._advance_direct(size)
        except (ProtocolError, PayloadTooBig, UnicodeDecodeError) as exc:
            self._direct = None
            self._record_failure(exc)

    def _advance_direct(self, size: int) -> None:
        assert self._direct is not None
        target, filled, opcode, fin, rsv, owner = self._direct
        filled += size
        self._direct = (target, filled, opcode, fin, rsv, owner)
        if filled < len(target):
            if self._message_is_text and not self._message_compressed and not rsv:
                self._check_partial_text(target, 0, filled, opcode)
            return
        self._direct = None
        self._handle_data(opcode, take_payload(target, owner), fin, rsv)

    def receive_eof(self) -> None:
        """The server closed its side of the TCP connection."""
        self.eof_received = True
        self._receive_stopped = True
        self._buffer = bytearray()
        self._direct = None
        # Without a stream there is no connection left, closing handshake or not.
        self.state = State.CLOSED

    def _record_failure(self, error: Exception) -> None:
        if isinstance(error, PayloadTooBig):
            code = CloseCode.MESSAGE_TOO_BIG
        elif isinstance(error, UnicodeDecodeError):
            code = CloseCode.INVALID_DATA
        else:
            code = CloseCode.PROTOCOL_ERROR
        failure = Failure(error, int(code), _reason_for(error))
        self.failure = failure
        self._direct = None
        self._receive_stopped = True
        self._events.append(failure)

    def _parse(self, buffer: bytearray) -> int:
        """Parse whole frames from ``buffer``; return how many bytes were used."""
        with memoryview(buffer) as view:
            return self._parse_view(buffer, view)

    def _parse_view(self, buffer: bytearray | memoryview, view: memoryview) -> int:
        pos = 0
        end = len(buffer)
        simple = not self.extensions and (self.max_size is None or self.max_size >= 125)
        max_size = 65535 if self.max_size is None else self.max_size
        events = self._events
        deflate = self._deflate
        while end - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            # The common frame -- a whole text or binary message of at most
            # 65535 bytes, plain or (with permessage-deflate) compressed -- in
            # a few steps; anything else gets the full checks below.
            if second <= 126 and (
                (simple and (first == 0x81 or first == 0x82))
                or (deflate is not None and (first == 0xC1 or first == 0xC2))
            ):
                if second < 126:
                    start = pos + 2
                    stop = start + second
                elif end - pos >= 4:
                    size = (buffer[pos + 2] << 8) | buffer[pos + 3]
                    start = pos + 4
                    # A non-minimal length or one above max_size: the full checks below.
                    stop = start + size if 126 <= size <= max_size else end + 1
                else:
                    stop = end + 1
                # Not inside a message, nor after a partial check of this frame.
                if stop <= end and not self._in_message and self._decoder is None:
                    payload = bytes(view[start:stop])
                    pos = stop
                    if first & 0x40:
                        assert deflate is not None
                        payload = deflate.decode_payload(
                            first & 0x0F, payload, True, True, self.max_size
                        )
                    if first & 0x0F == OP_TEXT:
                        events.append(Fragment(payload.decode(), True, True, True))
                    else:
                        events.append(Fragment(payload, False, True, True))
                    continue
            if second & 0x80:
                raise ProtocolError("the server sent a masked frame (RFC 6455 5.1)")
            length = second & 0x7F
            header_size = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
                header_size = 4
                if length < 126:
                    raise ProtocolError(
                        "the server used a 16-bit length for a payload under 126 bytes"
                    )
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header_size = 10
                if length >> 63:
                    raise ProtocolError("the server sent a 64-bit length with its top bit set")
                if length < 65536:
                    raise ProtocolError(
                        "the server used a 64-bit length for a payload under 65536 bytes"
                    )
            opcode = first & 0x0F
            fin = bool(first & 0x80)
            rsv = first & 0x70
            if opcode >= 8:
                self._check_control_header(opcode, fin, rsv, length)
            else:
                self._check_data_header(opcode, rsv, length)
            start = pos + header_size
            stop = start + length
            if stop > end:
                if (
                    opcode < 8
                    and length >= _DIRECT_THRESHOLD
                    and (self.max_size is not None or length <= _DIRECT_UNBOUNDED_MAX)
                ):
                    # The rest of this large frame goes straight into its own
                    # buffer (see direct_buffer): no more copies through here.
                    target, owner = payload_buffer(length)
                    target[: end - start] = view[start:end]
                    self._direct = (target, 0, opcode, fin, rsv, owner)
                    self._advance_direct(end - start)
                    return end
                if (
                    opcode < 8
                    and not rsv
                    and self._message_is_text
                    and not self._message_compressed
                ):
                    self._check_partial_text(view, start, end, opcode)
                break
            payload = bytes(view[start:stop])
            pos = stop
            if opcode >= 8:
                self._handle_control(opcode, payload)
                if self._receive_stopped:
                    return end
            else:
                self._handle_data(opcode, payload, fin, rsv)
                if self._receive_stopped:
                    return end
        return pos

    def _check_control_header(self, opcode: int, fin: bool, rsv: int, length: int) -> None:
        if opcode not in _KNOWN_OPCODES:
            raise ProtocolError(f"the server sent a frame with reserved opcode {opcode:#x}")
        if not fin:
            raise ProtocolError("the server fragmented a control frame")
        if length > 125:
            raise ProtocolError(
                f"the server sent a control frame with a {length}-byte payload (at most 125)"
            )
        if rsv:
            raise ProtocolError(
                f"the server set reserved bits {rsv >> 4:#05b} on a control frame "
                "(no extension defines them there)"
            )

    def _check_data_header(self, opcode: int, rsv: int, length: int) -> None:
        if opcode == OP_CONT:
            if not self._in_message:
                raise ProtocolError(
                    "the server sent a continuation frame with no fragmented message started"
                )
        elif opcode == OP_TEXT or opcode == OP_BINARY:
            if self._in_message:
                raise ProtocolError(
                    "the server started a new message inside a fragmented message "
                    "(expected a continuation frame)"
                )
            # Known from the header on: lets partial text frames be checked.
            self._message_is_text = opcode == OP_TEXT
            # Any reserved bit: an extension transforms the payload, so its
            # bytes are neither text nor the message's size until decoded.
            self._message_compressed = bool(rsv)
        else:
            raise ProtocolError(f"the server sent a frame with reserved opcode {opcode:#x}")
        if rsv and not self.extensions:
            raise ProtocolError(
                f"the server set reserved bits {rsv >> 4:#05b} "
                "without a negotiated extension that defines them"
            )
        max_size = self.max_size
        if max_size is None:
            return
        if self._message_compressed:
            # The extension bounds the inflated size; bound what is buffered
            # here, allowing for deflate's overhead on incompressible data.
            if length > max_size + (max_size >> 10) + 1024:
                raise PayloadTooBig(None, max_size)
        elif self._message_size + length > max_size:
            raise PayloadTooBig(length, max_size, self._message_size)

    def _check_partial_text(self, view: memoryview, start: int, end: int, opcode: int) -> None:
        """Validate the part of an incomplete text frame received so far."""
        if opcode == OP_TEXT and not self._in_message and self._decoder is None:
            self._decoder = _utf8_decoder()
        decoder = self._decoder
        if decoder is None:
            return
        checked = self._partial_checked
        available = end - start
        if available == checked:
            return
        text = decoder.decode(view[start + checked : end])
        _check_pending_utf8(decoder)
        if text:
            self._partial_text.append(text)
        self._partial_checked = available

    def _handle_control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._events.append(Ping(payload))
        elif opcode == OP_PONG:
            self._events.append(Pong(payload))
        else:
            close = Close.parse(payload)
            self.close_rcvd = close
            if self.close_sent is not None:
                self.close_rcvd_then_sent = False
                self.state = State.CLOSING
            self._receive_stopped = True
            self._events.append(CloseReceived(close))

    def _handle_data(self, opcode: int, payload: bytes, fin: bool, rsv: int) -> None:
        first = opcode != OP_CONT
        deflate = self._deflate
        if deflate is not None:
            if rsv & 0x30:
                raise ProtocolError(
                    "the server set reserved bits that no negotiated extension defines"
                )
            max_size = self.max_size
            payload = deflate.decode_payload(
                opcode,
                payload,
                fin,
                rsv != 0,
                None if max_size is None else max_size - self._message_size,
            )
            if max_size is not None and self._message_size + len(payload) > max_size:
                raise PayloadTooBig(len(payload), max_size, self._message_size)
        elif self.extensions:
            frame = Frame(
                opcode, payload, fin, bool(rsv & 0x40), bool(rsv & 0x20), bool(rsv & 0x10)
            )
            max_size = self.max_size
            for extension in self.extensions:
                remaining = None if max_size is None else max_size - self._message_size
                frame = extension.decode(frame, max_size=remaining)
            if frame.rsv1 or frame.rsv2 or frame.rsv3:
                raise ProtocolError(
                    "the server set reserved bits that no negotiated extension defines"
                )
            payload = frame.data
            if max_size is not None and self._message_size + len(payload) > max_size:
                raise PayloadTooBig(len(payload), max_size, self._message_size)
        self._message_size += len(payload)
        if first:
            self._message_frames = 1
        else:
            # A message may have at most max_size frames, so that endless
            # empty fragments fail instead of running forever.
            self._message_frames += 1
            if self.max_size is not None and self._message_frames > self.max_size:
                raise PayloadTooBig(None, self.max_size)
        if first:
            self._message_is_text = opcode == OP_TEXT
        if self._message_is_text:
            decoder = self._decoder
            if decoder is None:
                if first and fin:
                    # A whole message in one frame: no state to carry.
                    data: str | bytes = payload.decode()
                    self._message_size = 0
                    self._events.append(Fragment(data, True, True, True))
                    return
                decoder = self._decoder = _utf8_decoder()
            checked = self._partial_checked
            if checked:
                self._partial_checked = 0
                head = "".join(self._partial_text)
                self._partial_text = []
                data = head + decoder.decode(payload[checked:], fin)
            else:
                data = decoder.decode(payload, fin)
            if fin:
                self._decoder = None
            else:
                _check_pending_utf8(decoder)
        else:
            data = payload
        if fin:
            self._in_message = False
            self._message_size = 0
        else:
            self._in_message = True
        self._events.append(Fragment(data, self._message_is_text, first, fin))

    # -- sending -----------------------------------------------------------

    def send_data(
        self, opcode: int, payload: bytes | bytearray | memoryview, fin: bool = True
    ) -> tuple[bytes, bytes]:
        """Serialize a data frame (TEXT, BINARY or CONT) as (header, payload).

        Raises :class:`InvalidState` after the close frame was sent, and
        :class:`ProtocolError` for a frame that breaks fragmentation order.
        """
        self._start_data_frame(opcode, fin)
        length = len(payload)
        if length < 65536 and not self.extensions:
            key = self._mask_key()
            first = (0x80 if fin else 0) | opcode
            if length < 126:
                header = bytes((first, 0x80 | length))
            else:
                header = bytes((first, 0xFE, length >> 8, length & 0xFF))
            return header + key, apply_mask(payload, key)
        deflate = self._deflate
        if deflate is not None:
            data, rsv = deflate.encode_payload(opcode, payload, fin)
            length = len(data)
            if length < 126:
                key = self._mask_key()
                header = bytes(((0x80 if fin else 0) | rsv | opcode, 0x80 | length))
                return header + key, apply_mask(data, key)
            return serialize_frame_parts(opcode, data, fin=fin, rsv1=rsv != 0, key=self._mask_key())
        if self.extensions:
            frame = Frame(opcode, bytes(payload), fin)
            for extension in self.extensions:
                frame = extension.encode(frame)
            return serialize_frame_parts(
                frame.opcode, frame.data, fin=fin, rsv1=frame.rsv1, key=self._mask_key()
            )
        return serialize_frame_parts(opcode, payload, fin=fin, key=self._mask_key())

    def send_large(
        self, opcode: int, payload: bytes, fin: bool = True
    ) -> tuple[bytes, MaskedPayload]:
        """``send_data`` for a payload of 64 KiB or more without extensions:
        the payload is masked piece by piece as it is written, never copied
        whole (see :class:`MaskedPayload`)."""
        assert not self.extensions and len(payload) >= 65536
        self._start_data_frame(opcode, fin)
        key = self._mask_key()
        header = masked_header((0x80 if fin else 0) | opcode, len(payload))
        return header + key, MaskedPayload(payload, key)

    def _start_data_frame(self, opcode: int, fin: bool) -> None:
        if self.state is not _OPEN or self.close_sent is not None:
            raise InvalidState("cannot send data: the connection is closing or closed")
        if opcode == OP_CONT:
            if not self._sending_fragments:
                raise ProtocolError("cannot send a continuation frame: no fragmented message")
        elif self._sending_fragments:
            raise ProtocolError("cannot start a new message inside a fragmented message")
        self._sending_fragments = not fin

    def send_small(self, opcode: int, payload: bytes) -> bytes | None:
        """Serialize a whole TEXT or BINARY message of under 64 KiB, without
        extensions, as one frame (``send_data`` in fewer steps); return None
        while a fragmented message is being sent (this one must wait).

        Raises :class:`InvalidState` after the close frame was sent.
        """
        if self.state is not _OPEN or self.close_sent is not None:
            raise InvalidState("cannot send data: the connection is closing or closed")
        if self._sending_fragments:
            return None
        assert not self.extensions
        position = self._mask_position
        pool = self._mask_pool
        if position >= len(pool):
            pool = self._mask_pool = os.urandom(_MASK_POOL)
            position = 0
        self._mask_position = position + 4
        key = pool[position : position + 4]
        length = len(payload)
        if length < 126:
            header = _SMALL_HEADERS[opcode][length]
        else:
            header = bytes((0x80 | opcode, 0xFE, length >> 8, length & 0xFF))
        return header + key + apply_mask(payload, key)

    def _mask_key(self) -> bytes:
        """A fresh masking key (RFC 6455 5.3), from a pool of os.urandom bytes
        refilled every 256 frames instead of a system call per frame."""
        position = self._mask_position
        pool = self._mask_pool
        if position >= len(pool):
            pool = self._mask_pool = os.urandom(_MASK_POOL)
            position = 0
        self._mask_position = position + 4
        return pool[position : position + 4]

    def send_ping(self, data: bytes) -> bytes:
        """Serialize a ping frame."""
        self._check_control_payload(data, "ping")
        return serialize_frame(OP_PING, data, key=self._mask_key())

    def send_pong(self, data: bytes) -> bytes:
        """Serialize a pong frame."""
        self._check_control_payload(data, "pong")
        return serialize_frame(OP_PONG, data, key=self._mask_key())

    def send_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Serialize the client's close frame and enter the CLOSING state.

        ``code`` 1005 sends a close frame without a payload.
        """
        if self.close_sent is not None:
            raise InvalidState("the close frame was already sent")
        close = Close(code, reason)
        payload = close.serialize()
        if len(payload) > 125:
            raise ProtocolError(
                f"close reason too long: {len(payload) - 2} bytes of UTF-8, at most 123"
            )
        frame = serialize_frame(OP_CLOSE, payload, key=self._mask_key())
        self.close_sent = close
        if self.close_rcvd is not None and self.close_rcvd_then_sent is None:
            self.close_rcvd_then_sent = True
        self.state = State.CLOSED if self.eof_received else State.CLOSING
        return frame

    def fail(self, code: int, reason: str = "") -> bytes:
        """Serialize the close frame that fails the connection, once.

        Returns ``b""`` when a close frame was already sent.
        """
        if self.close_sent is not None:
            return b""
        self._receive_stopped = True
        self._direct = None
        return self.send_close(code, reason)

    @staticmethod
    def _check_control_payload(data: bytes, kind: str) -> None:
        if len(data) > 125:
            raise ProtocolError(f"{kind} payload of {len(data)} bytes is too long (at most 125)")
