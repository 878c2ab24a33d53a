"""frames: byte-exact serialization, masking, and close payload rules
(RFC 6455 sections 5.2, 5.3, 5.5.1 and 7.4)."""

from __future__ import annotations

import struct

import pytest

from requests_ws.exceptions import ProtocolError
from requests_ws.frames import (
    CTRL_OPCODES,
    DATA_OPCODES,
    EXTERNAL_CLOSE_CODES,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Close,
    CloseCode,
    Frame,
    check_close_code,
    serialize_frame,
    serialize_frame_parts,
)
from requests_ws.masking import apply_mask

# -- helpers shared with the other sans-I/O tests ----------------------------


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


def xor_by_hand(data: bytes, key: bytes) -> bytes:
    """RFC 6455 5.3, octet by octet: independent of the masking module."""
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


def pattern(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(range(size % 256))


# -- lengths ---------------------------------------------------------------------

LENGTHS = [
    (0, b"\x00"),
    (1, b"\x01"),
    (125, b"\x7d"),
    (126, b"\x7e\x00\x7e"),
    (127, b"\x7e\x00\x7f"),
    (65535, b"\x7e\xff\xff"),
    (65536, b"\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    (2**20 + 3, b"\x7f" + struct.pack("!Q", 2**20 + 3)),
]


@pytest.mark.parametrize(("size", "length_bytes"), LENGTHS, ids=[str(s) for s, _ in LENGTHS])
def test_masked_length_encodings_byte_exact(size: int, length_bytes: bytes) -> None:
    payload = pattern(size)
    frame = serialize_frame(OP_BINARY, payload)
    header_size = 1 + len(length_bytes)
    # FIN + BINARY, then the mask bit on the first length byte, then the key.
    assert frame[0] == 0x82
    assert frame[1] == 0x80 | length_bytes[0]
    assert frame[2:header_size] == length_bytes[1:]
    key = frame[header_size : header_size + 4]
    assert len(key) == 4
    assert len(frame) == header_size + 4 + size
    if size < 70000:
        assert xor_by_hand(frame[header_size + 4 :], key) == payload
    assert unmask(frame) == (frame[:header_size], payload)


@pytest.mark.parametrize(("size", "length_bytes"), LENGTHS, ids=[str(s) for s, _ in LENGTHS])
def test_unmasked_length_encodings_byte_exact(size: int, length_bytes: bytes) -> None:
    payload = pattern(size)
    assert serialize_frame(OP_TEXT, payload, mask=False) == b"\x81" + length_bytes + payload


def test_unmasked_frame_for_tests_and_servers() -> None:
    assert serialize_frame(OP_TEXT, b"Hello", mask=False) == b"\x81\x05Hello"


def test_rfc_6455_5_7_examples() -> None:
    """The examples of RFC 6455 section 5.7, with the mask key they use."""
    key = b"\x37\xfa\x21\x3d"
    assert xor_by_hand(b"Hello", key) == b"\x7f\x9f\x4d\x51\x58"
    assert apply_mask(b"Hello", key) == b"\x7f\x9f\x4d\x51\x58"
    assert serialize_frame(OP_TEXT, b"Hel", fin=False, mask=False) == b"\x01\x03Hel"
    assert serialize_frame(OP_CONT, b"lo", mask=False) == b"\x80\x02lo"
    assert serialize_frame(OP_PING, b"Hello", mask=False) == b"\x89\x05Hello"
    assert serialize_frame(OP_PONG, b"Hello", mask=False) == b"\x8a\x05Hello"
    assert serialize_frame(OP_BINARY, b"\x00" * 256, mask=False)[:4] == b"\x82\x7e\x01\x00"
    assert serialize_frame(OP_BINARY, b"\x00" * 65536, mask=False)[:10] == (
        b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"
    )


@pytest.mark.parametrize(
    ("kwargs", "first"),
    [
        ({}, 0x81),
        ({"fin": False}, 0x01),
        ({"rsv1": True}, 0xC1),
        ({"fin": False, "rsv1": True}, 0x41),
    ],
)
def test_flags(kwargs: dict[str, bool], first: int) -> None:
    assert serialize_frame(OP_TEXT, b"", mask=False, **kwargs) == bytes([first, 0])
    masked = serialize_frame(OP_TEXT, b"", **kwargs)
    assert masked[:2] == bytes([first, 0x80]) and len(masked) == 6


@pytest.mark.parametrize("opcode", [OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG])
def test_opcodes_on_the_wire(opcode: int) -> None:
    assert serialize_frame(opcode, b"", mask=False)[0] == 0x80 | opcode


def test_opcode_values_and_sets() -> None:
    assert (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG) == (0, 1, 2, 8, 9, 10)
    assert {0, 1, 2} == DATA_OPCODES
    assert {8, 9, 10} == CTRL_OPCODES


# -- masking -------------------------------------------------------------------------


def test_fresh_mask_key_per_frame() -> None:
    first = serialize_frame(OP_TEXT, b"same payload")
    second = serialize_frame(OP_TEXT, b"same payload")
    assert first != second
    assert first[2:6] != second[2:6]
    assert unmask(first) == unmask(second) == (b"\x81\x8c", b"same payload")


def test_mask_keys_do_not_repeat() -> None:
    keys = {serialize_frame(OP_BINARY, b"x")[2:6] for _ in range(200)}
    assert len(keys) == 200  # 2**-32 odds per pair of a repeat


def test_masked_payload_differs_from_plain_payload() -> None:
    payload = b"a" * 64
    frame = serialize_frame(OP_BINARY, payload)
    assert frame[6:] != payload or frame[2:6] == b"\x00\x00\x00\x00"


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 7, 8, 125, 126, 1000, 4097])
def test_unmasking_round_trip(size: int) -> None:
    payload = pattern(size)
    header, body = serialize_frame_parts(OP_BINARY, payload)
    key = header[-4:]
    assert xor_by_hand(body, key) == payload
    assert apply_mask(apply_mask(payload, key), key) == payload


def test_parts_are_not_joined() -> None:
    header, body = serialize_frame_parts(OP_BINARY, b"x" * 70000)
    assert len(header) == 2 + 8 + 4
    assert len(body) == 70000
    header, body = serialize_frame_parts(OP_BINARY, b"x" * 70000, mask=False)
    assert header == b"\x82\x7f" + struct.pack("!Q", 70000)
    assert body == b"x" * 70000


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_like_payloads(kind: type) -> None:
    payload = kind(b"payload")
    assert unmask(serialize_frame(OP_BINARY, payload))[1] == b"payload"
    assert serialize_frame(OP_BINARY, payload, mask=False) == b"\x82\x07payload"


# -- close codes (RFC 6455 7.4) ---------------------------------------------------------

VALID_ON_THE_WIRE = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_ON_THE_WIRE += [3000, 3001, 3999, 4000, 4001, 4999]
INVALID_ON_THE_WIRE = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999]
INVALID_ON_THE_WIRE += [5000, 5001, 65535]


@pytest.mark.parametrize("code", VALID_ON_THE_WIRE)
def test_valid_close_codes(code: int) -> None:
    check_close_code(code)
    assert Close.parse(struct.pack("!H", code) + b"ok") == Close(code, "ok")
    assert Close(code, "ok").serialize() == struct.pack("!H", code) + b"ok"


@pytest.mark.parametrize("code", INVALID_ON_THE_WIRE)
def test_invalid_close_codes(code: int) -> None:
    with pytest.raises(ProtocolError, match="invalid close code"):
        check_close_code(code)
    with pytest.raises(ProtocolError, match=f"invalid close code {code}"):
        Close.parse(struct.pack("!H", code))
    if code != 1005:
        with pytest.raises(ProtocolError, match="invalid close code"):
            Close(code, "").serialize()


def test_every_close_code_follows_7_4() -> None:
    """All 65536 codes: exactly 1000-1003, 1007-1014 and 3000-4999 may be sent."""
    accepted = set()
    for code in range(65536):
        try:
            check_close_code(code)
        except ProtocolError:
            continue
        accepted.add(code)
    expected = {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}
    assert accepted == expected
    assert set(EXTERNAL_CLOSE_CODES) == {1000, 1001, 1002, 1003, *range(1007, 1015)}


def test_close_code_enum_values() -> None:
    values = {code.name: int(code) for code in CloseCode}
    assert values["NORMAL_CLOSURE"] == 1000
    assert values["NO_STATUS_RCVD"] == 1005
    assert values["ABNORMAL_CLOSURE"] == 1006
    assert values["INVALID_DATA"] == 1007
    assert values["MESSAGE_TOO_BIG"] == 1009
    assert values["TLS_HANDSHAKE"] == 1015


def test_empty_close_payload_is_1005() -> None:
    assert Close.parse(b"") == Close(1005, "")
    assert Close(1005, "").serialize() == b""


def test_close_with_one_byte_payload() -> None:
    with pytest.raises(ProtocolError, match="too short"):
        Close.parse(b"\x03")


@pytest.mark.parametrize(
    "reason",
    [b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"ok\xe2\x82", b"\xf4\x90\x80\x80"],
)
def test_close_with_invalid_utf8_reason(reason: bytes) -> None:
    with pytest.raises(UnicodeDecodeError):
        Close.parse(b"\x03\xe8" + reason)


def test_close_payload_round_trips() -> None:
    closes = [Close(1000, ""), Close(1001, "bye"), Close(4321, "κόσμε €𝄞"), Close(3000, "x" * 123)]
    for close in closes:
        assert Close.parse(close.serialize()) == close
    assert Close(1000, "bye").serialize() == b"\x03\xe8bye"
    assert Close(1000, "é").serialize() == b"\x03\xe8\xc3\xa9"


def test_close_str() -> None:
    assert str(Close(1000, "")) == "1000 (OK)"
    assert str(Close(1006, "")) == "1006 (connection closed abnormally [internal])"
    assert str(Close(3000, "x")) == "3000 (registered) x"
    assert str(Close(4000, "x")) == "4000 (private use) x"
    assert str(Close(2000, "")) == "2000 (unknown)"


def test_close_frame_on_the_wire() -> None:
    assert serialize_frame(OP_CLOSE, Close(1000, "").serialize(), mask=False) == b"\x88\x02\x03\xe8"
    assert unmask(serialize_frame(OP_CLOSE, Close(1001, "bye").serialize())) == (
        b"\x88\x85",
        b"\x03\xe9bye",
    )


def test_frame_str() -> None:
    assert str(Frame(OP_TEXT, b"abc", fin=False)) == "TEXT 3 bytes, continued"
    assert str(Frame(OP_PING, b"a")) == "PING 1 byte"
    assert str(Frame(0x3, b"")) == "? 0 bytes"
