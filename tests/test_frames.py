"""frames: byte-exact serialization, masking, and close payload rules."""

from __future__ import annotations

import struct

import pytest

from requests_ws.exceptions import ProtocolError
from requests_ws.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    Close,
    Frame,
    check_close_code,
    serialize_frame,
    serialize_frame_parts,
)
from requests_ws.masking import apply_mask


def unmask(frame: bytes) -> tuple[bytes, bytes]:
    """Split a client frame into its header (without key) and unmasked payload."""
    length = frame[1] & 0x7F
    offset = 2 + {126: 2, 127: 8}.get(length, 0)
    key = frame[offset : offset + 4]
    return frame[:offset], apply_mask(frame[offset + 4 :], key)


def split_client_frames(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a stream of client frames into (header without key, unmasked payload)."""
    frames = []
    while data:
        length = data[1] & 0x7F
        offset = 2 + {126: 2, 127: 8}.get(length, 0)
        if length >= 126:
            length = int.from_bytes(data[2:offset], "big")
        frames.append(unmask(data[: offset + 4 + length]))
        data = data[offset + 4 + length :]
    return frames


@pytest.mark.parametrize(
    ("size", "length_bytes"),
    [
        (0, b"\x80"),
        (125, b"\xfd"),
        (126, b"\xfe\x00\x7e"),
        (65535, b"\xfe\xff\xff"),
        (65536, b"\xff" + struct.pack("!Q", 65536)),
    ],
)
def test_length_encodings(size: int, length_bytes: bytes) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    frame = serialize_frame(OP_BINARY, payload)
    header, body = unmask(frame)
    assert header == b"\x82" + length_bytes
    assert body == payload


def test_unmasked_frame_for_tests_and_servers() -> None:
    assert serialize_frame(OP_TEXT, b"Hello", mask=False) == b"\x81\x05Hello"


def test_flags() -> None:
    assert serialize_frame(OP_TEXT, b"", fin=False, mask=False) == b"\x01\x00"
    assert serialize_frame(OP_TEXT, b"", rsv1=True, mask=False) == b"\xc1\x00"
    assert serialize_frame(OP_PING, b"", mask=False) == b"\x89\x00"


def test_fresh_mask_key_per_frame() -> None:
    first = serialize_frame(OP_TEXT, b"same payload")
    second = serialize_frame(OP_TEXT, b"same payload")
    assert first[2:6] != second[2:6]
    assert unmask(first) == unmask(second)


def test_parts_are_not_joined() -> None:
    header, body = serialize_frame_parts(OP_BINARY, b"x" * 70000)
    assert len(header) == 2 + 8 + 4
    assert len(body) == 70000


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
)
def test_valid_close_codes(code: int) -> None:
    check_close_code(code)
    assert Close.parse(struct.pack("!H", code) + b"ok") == Close(code, "ok")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    with pytest.raises(ProtocolError, match="invalid close code"):
        check_close_code(code)
    with pytest.raises(ProtocolError):
        Close.parse(struct.pack("!H", code))


def test_close_payloads() -> None:
    assert Close.parse(b"") == Close(1005, "")
    assert Close(1000, "bye").serialize() == b"\x03\xe8bye"
    assert Close(1005, "").serialize() == b""
    with pytest.raises(ProtocolError, match="too short"):
        Close.parse(b"\x03")
    with pytest.raises(UnicodeDecodeError):
        Close.parse(b"\x03\xe8\xff")
    assert str(Close(1000, "")) == "1000 (OK)"
    assert str(Close(4000, "x")) == "4000 (private use) x"
    assert serialize_frame(OP_CLOSE, Close(1000, "").serialize(), mask=False) == b"\x88\x02\x03\xe8"


def test_frame_str() -> None:
    assert str(Frame(OP_TEXT, b"abc", fin=False)) == "TEXT 3 bytes, continued"
