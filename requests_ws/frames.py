"""WebSocket frames (RFC 6455 section 5): opcodes, the Frame and Close values,
serialization with client masking, and close-code rules (section 7.4).

Parsing lives in :mod:`requests_ws.protocol`, which reads frames straight out
of its receive buffer; this module owns the wire format of a single frame.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import struct
from collections.abc import Iterator

from .errors import ProtocolError
from .masking import apply_mask

__all__ = [
    "Opcode",
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "DATA_OPCODES",
    "CTRL_OPCODES",
    "Frame",
    "Close",
    "CloseCode",
    "MaskedPayload",
    "masked_header",
    "serialize_frame",
    "serialize_frame_parts",
    "check_close_code",
    "EXTERNAL_CLOSE_CODES",
]


class Opcode(enum.IntEnum):
    """Frame opcodes defined by RFC 6455."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


OP_CONT = Opcode.CONT
OP_TEXT = Opcode.TEXT
OP_BINARY = Opcode.BINARY
OP_CLOSE = Opcode.CLOSE
OP_PING = Opcode.PING
OP_PONG = Opcode.PONG

DATA_OPCODES = frozenset({OP_CONT, OP_TEXT, OP_BINARY})
CTRL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})


class CloseCode(enum.IntEnum):
    """Close codes of RFC 6455 section 7.4.1 and the IANA registry."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


# Codes that may appear in a close frame on the wire (1005, 1006 and 1015 are
# reserved for reporting and must never be sent; 1004 is reserved).
EXTERNAL_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)

_CLOSE_CODE_EXPLANATIONS = {
    1000: "OK",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received [internal]",
    1006: "connection closed abnormally [internal]",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "extension required",
    1011: "unexpected error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure [internal]",
}


def check_close_code(code: int) -> None:
    """Raise :class:`ProtocolError` unless ``code`` may be sent in a close frame."""
    if code in EXTERNAL_CLOSE_CODES or 3000 <= code <= 4999:
        return
    raise ProtocolError(
        f"invalid close code {code}: use 1000-1003, 1007-1014 or 3000-4999 "
        "(1005, 1006 and 1015 are reserved for reporting, never for sending)"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Close:
    """The payload of a close frame: a code and a UTF-8 reason.

    A close frame with an empty payload is reported as code 1005.
    """

    code: int
    reason: str

    def __str__(self) -> str:
        if 3000 <= self.code < 4000:
            explanation = "registered"
        elif 4000 <= self.code < 5000:
            explanation = "private use"
        else:
            explanation = _CLOSE_CODE_EXPLANATIONS.get(self.code, "unknown")
        text = f"{self.code} ({explanation})"
        if self.reason:
            text = f"{text} {self.reason}"
        return text

    @classmethod
    def parse(cls, data: bytes) -> Close:
        """Parse a close frame payload; raise ProtocolError or UnicodeDecodeError."""
        if len(data) >= 2:
            (code,) = struct.unpack("!H", data[:2])
            reason = bytes(data[2:]).decode()
            check_close_code(code)
            return cls(code, reason)
        if len(data) == 0:
            return cls(CloseCode.NO_STATUS_RCVD, "")
        raise ProtocolError("close frame too short: a 1-byte payload cannot hold a close code")

    def serialize(self) -> bytes:
        """The close frame payload; 1005 serializes to an empty payload."""
        if self.code == CloseCode.NO_STATUS_RCVD:
            return b""
        check_close_code(self.code)
        return struct.pack("!H", self.code) + self.reason.encode()


@dataclasses.dataclass(slots=True)
class Frame:
    """One WebSocket frame, its payload unmasked."""

    opcode: int
    data: bytes
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def __str__(self) -> str:
        length = f"{len(self.data)} byte{'' if len(self.data) == 1 else 's'}"
        kind = Opcode(self.opcode).name if self.opcode in Opcode._value2member_map_ else "?"
        flags = "" if self.fin else ", continued"
        return f"{kind} {length}{flags}"


_pack_short = struct.Struct("!BB").pack
_pack_medium = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


def masked_header(first: int, length: int) -> bytes:
    """The header of a masked frame (without its key): first byte and length."""
    if length < 126:
        return _pack_short(first, 0x80 | length)
    if length < 65536:
        return _pack_medium(first, 0x80 | 126, length)
    return _pack_long(first, 0x80 | 127, length)


class MaskedPayload:
    """A large frame's payload, masked (RFC 6455 5.3) piece by piece as it is
    written: the message is never copied whole, and each piece is masked
    while it is still in the processor's cache. ``payload`` is ``bytes``, so
    it cannot change while it is being written."""

    __slots__ = ("_key", "_payload")

    def __init__(self, payload: bytes, key: bytes) -> None:
        self._payload = payload
        self._key = key

    def __len__(self) -> int:
        return len(self._payload)

    def pieces(self, size: int) -> Iterator[bytes]:
        """The masked payload in pieces of ``size`` bytes (a multiple of 4)."""
        assert size % 4 == 0, "pieces must keep the key aligned"
        view = memoryview(self._payload)
        key = self._key
        for start in range(0, len(view), size):
            yield apply_mask(view[start : start + size], key)


def serialize_frame_parts(
    opcode: int,
    payload: bytes | bytearray | memoryview,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bool = True,
    key: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Serialize a frame as (header, masked payload), without joining them.

    Large payloads are written as two buffers so that the payload is copied
    once (by masking) and never again. A client always masks (RFC 6455 5.3);
    ``mask=False`` exists for tests and servers. ``key`` is the 4-byte masking
    key; by default a fresh one from ``os.urandom``.
    """
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = _pack_short(first, mask_bit | length)
    elif length < 65536:
        header = _pack_medium(first, mask_bit | 126, length)
    else:
        header = _pack_long(first, mask_bit | 127, length)
    if not mask:
        return header, bytes(payload)
    if key is None:
        key = os.urandom(4)
    return header + key, apply_mask(payload, key)


def serialize_frame(
    opcode: int,
    payload: bytes | bytearray | memoryview,
    *,
    fin: bool = True,
    rsv1: bool = False,
    mask: bool = True,
    key: bytes | None = None,
) -> bytes:
    """Serialize one frame into a single bytes object (for small frames)."""
    header, body = serialize_frame_parts(opcode, payload, fin=fin, rsv1=rsv1, mask=mask, key=key)
    return header + body
