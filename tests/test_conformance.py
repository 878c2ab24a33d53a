"""Conformance cases, organised like the Autobahn TestSuite's categories and
written from RFC 6455 and RFC 7692.

Each case plays a server: it feeds bytes to :class:`ClientProtocol` (whole, or
cut into pieces) and drives it the way :class:`ClientConnection` does when the
application echoes every message: messages are echoed, pings answered,
close frames answered, failures answered with a close frame carrying the
failure's code. The case checks the frames the client sends back, in order.
"""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from requests_ws.extensions import PerMessageDeflate
from requests_ws.frames import OP_BINARY, OP_CONT, OP_TEXT
from requests_ws.protocol import ClientProtocol, CloseReceived, Failure, Fragment, Ping

from .peers.raw_peer import close_payload, frame_bytes
from .test_frames import split_client_frames

Echo = list[tuple[int, bytes]]
CLOSE = 0x8


def client_frames(data: bytes) -> Echo:
    """The client's frames, unmasked, as (opcode, payload); fragments joined."""
    frames: Echo = []
    message = b""
    for header, payload in split_client_frames(data):
        opcode, fin = header[0] & 0x0F, bool(header[0] & 0x80)
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            message += payload
            if fin:
                frames.append((-1, message))  # data message, opcode tracked separately
                message = b""
        else:
            frames.append((opcode, payload))
    return frames


def echo_client(
    server_bytes: bytes,
    *,
    chunk: int | None = None,
    max_size: int | None = 2**24,
    extensions: list[PerMessageDeflate] | None = None,
) -> Echo:
    """Run the echo application over the server's bytes; return what it sends."""
    protocol = ClientProtocol(max_size=max_size, extensions=extensions or [])
    sent = b""
    message: list[str | bytes] = []
    pieces = (
        [server_bytes]
        if chunk is None
        else [server_bytes[i : i + chunk] for i in range(0, len(server_bytes), chunk)]
    )
    for piece in pieces:
        protocol.receive_data(piece)
        for event in protocol.events_received():
            if isinstance(event, Fragment):
                message.append(event.data)
                if event.fin:
                    if event.is_text:
                        payload = "".join(message).encode()  # type: ignore[arg-type]
                        header, body = protocol.send_data(OP_TEXT, payload)
                    else:
                        header, body = protocol.send_data(OP_BINARY, b"".join(message))  # type: ignore[arg-type]
                    sent += header + body
                    message = []
            elif isinstance(event, Ping):
                sent += protocol.send_pong(event.data)
            elif isinstance(event, CloseReceived):
                code = 1000 if event.close.code == 1005 else event.close.code
                sent += protocol.send_close(code)
                return client_frames(sent)
            elif isinstance(event, Failure):
                sent += protocol.fail(event.code, event.reason)
                return client_frames(sent)
    return client_frames(sent)


def closed_with(frames: Echo, code: int) -> None:
    assert frames[-1][0] == CLOSE, frames
    assert struct.unpack("!H", frames[-1][1][:2])[0] == code


def text(payload: bytes, **kwargs: object) -> bytes:
    return frame_bytes(0x1, payload, **kwargs)  # type: ignore[arg-type]


def binary(payload: bytes, **kwargs: object) -> bytes:
    return frame_bytes(0x2, payload, **kwargs)  # type: ignore[arg-type]


def ping(payload: bytes = b"", **kwargs: object) -> bytes:
    return frame_bytes(0x9, payload, **kwargs)  # type: ignore[arg-type]


def close(code: int | None = 1000, reason: bytes = b"") -> bytes:
    return frame_bytes(0x8, b"" if code is None else struct.pack("!H", code) + reason)


# -- 1 Framing --------------------------------------------------------------

SIZES = [0, 125, 126, 127, 128, 65535, 65536]


@pytest.mark.parametrize("size", SIZES, ids=[f"case_1_1_{i + 1}" for i in range(len(SIZES))])
def test_case_1_1_text(size: int) -> None:
    payload = b"*" * size
    frames = echo_client(text(payload) + close())
    assert frames[0] == (-1, payload)
    closed_with(frames, 1000)


@pytest.mark.parametrize("size", SIZES, ids=[f"case_1_2_{i + 1}" for i in range(len(SIZES))])
def test_case_1_2_binary(size: int) -> None:
    payload = os.urandom(size)
    assert echo_client(binary(payload) + close(), chunk=997)[0] == (-1, payload)


# -- 2 Pings/Pongs -----------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "data", "expected"),
    [
        ("case_2_1", ping(), [(0xA, b"")]),
        ("case_2_2", ping(b"Hello, world!"), [(0xA, b"Hello, world!")]),
        (
            "case_2_3",
            ping(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
            [(0xA, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")],
        ),
        ("case_2_4", ping(b"*" * 125), [(0xA, b"*" * 125)]),
        ("case_2_6", ping(b"*" * 125), [(0xA, b"*" * 125)]),
        ("case_2_7", frame_bytes(0xA, b""), []),
        ("case_2_8", frame_bytes(0xA, b"unsolicited"), []),
        (
            "case_2_10",
            b"".join(ping(str(i).encode()) for i in range(10)),
            [(0xA, str(i).encode()) for i in range(10)],
        ),
    ],
)
def test_case_2_ping_pong(case: str, data: bytes, expected: Echo) -> None:
    chunk = 1 if case == "case_2_6" else None
    frames = echo_client(data + close(), chunk=chunk)
    assert frames[:-1] == expected
    closed_with(frames, 1000)


def test_case_2_5_ping_too_long() -> None:
    closed_with(echo_client(ping(b"*" * 126)), 1002)


def test_case_2_9_unsolicited_pong_then_ping() -> None:
    frames = echo_client(frame_bytes(0xA, b"x") + ping(b"y") + close())
    assert frames[0] == (0xA, b"y")


# -- 3 Reserved bits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "frame"),
    [
        ("case_3_1", text(b"Hello", rsv=0x40)),
        ("case_3_2", text(b"Hello", rsv=0x20)),
        ("case_3_3", text(b"Hello", rsv=0x60)),
        ("case_3_4", text(b"Hello", rsv=0x10)),
        ("case_3_5", binary(b"\x00\xff", rsv=0x50)),
        ("case_3_6", ping(b"", rsv=0x30)),
        ("case_3_7", frame_bytes(0x8, b"\x03\xe8", rsv=0x70)),
    ],
)
def test_case_3_reserved_bits(case: str, frame: bytes) -> None:
    frames = echo_client(text(b"before") + frame + text(b"after"))
    assert frames[0] == (-1, b"before")
    closed_with(frames, 1002)
    assert (-1, b"after") not in frames


# -- 4 Opcodes ------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_case_4_reserved_opcodes(opcode: int) -> None:
    frames = echo_client(text(b"before") + frame_bytes(opcode, b"payload") + ping())
    assert frames[0] == (-1, b"before")
    closed_with(frames, 1002)
    assert len(frames) == 2


# -- 5 Fragmentation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "data", "expected"),
    [
        ("case_5_1", ping(b"frag", fin=False) + ping(b"ment"), 1002),
        ("case_5_2", frame_bytes(0xA, b"frag", fin=False), 1002),
        ("case_5_9", frame_bytes(0x0, b"orphan") + text(b"x"), 1002),
        ("case_5_10", frame_bytes(0x0, b"orphan", fin=False) + text(b"x"), 1002),
        ("case_5_12", frame_bytes(0x0, b"a", fin=False) + frame_bytes(0x0, b"b"), 1002),
        ("case_5_18", text(b"a", fin=False) + text(b"b"), 1002),
        ("case_5_19", text(b"a", fin=False) + binary(b"b", fin=False), 1002),
    ],
)
def test_case_5_fragmentation_errors(case: str, data: bytes, expected: int) -> None:
    closed_with(echo_client(data), expected)


@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "bytewise"])
def test_case_5_3_to_5_8_fragmented_messages(chunk: int | None) -> None:
    data = (
        text(b"frag", fin=False)
        + ping(b"in between")
        + frame_bytes(0x0, b"men", fin=False)
        + frame_bytes(0xA, b"unsolicited pong")
        + frame_bytes(0x0, b"ted")
        + close()
    )
    frames = echo_client(data, chunk=chunk)
    assert frames[0] == (0xA, b"in between")
    assert frames[1] == (-1, b"fragmented")
    closed_with(frames, 1000)


def test_case_5_15_empty_fragments() -> None:
    data = (
        text(b"", fin=False)
        + frame_bytes(0x0, b"", fin=False)
        + frame_bytes(0x0, b"x", fin=False)
        + frame_bytes(0x0, b"")
        + close()
    )
    assert echo_client(data)[0] == (-1, b"x")


def test_case_5_20_many_fragments() -> None:
    parts = [os.urandom(64) for _ in range(1000)]
    data = binary(parts[0], fin=False)
    data += b"".join(frame_bytes(0x0, part, fin=False) for part in parts[1:-1])
    data += frame_bytes(0x0, parts[-1]) + close()
    assert echo_client(data, chunk=4096)[0] == (-1, b"".join(parts))


# -- 6 UTF-8 handling ----------------------------------------------------------

VALID_UTF8 = [
    "",
    "Hello-µ@ßöäüàá-UTF-8!!",
    "κόσμε",
    "\u0080",
    "\u07ff",
    "\u0800",
    "\uffff",
    "\U00010000",
    "\U0010ffff",
    "\ufeff",
]

INVALID_UTF8 = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
    b"\x80",
    b"\xbf",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xf8\x88\x80\x80\xaf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xfe",
    b"\xff",
    b"\xc0",
    b"\xe0\x80",
    b"\xce\xba\xe1\xbd",
]


@pytest.mark.parametrize(
    "value", VALID_UTF8, ids=[f"case_6_valid_{i}" for i in range(len(VALID_UTF8))]
)
@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "bytewise"])
def test_case_6_valid_utf8(value: str, chunk: int | None) -> None:
    encoded = value.encode()
    middle = len(encoded) // 2
    data = text(encoded[:middle], fin=False) + frame_bytes(0x0, encoded[middle:]) + close()
    assert echo_client(data, chunk=chunk)[0] == (-1, encoded)


@pytest.mark.parametrize(
    "value", INVALID_UTF8, ids=[f"case_6_invalid_{i}" for i in range(len(INVALID_UTF8))]
)
@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "bytewise"])
def test_case_6_invalid_utf8(value: bytes, chunk: int | None) -> None:
    frames = echo_client(text(value), chunk=chunk)
    closed_with(frames, 1007)
    assert len(frames) == 1


@pytest.mark.parametrize("case", ["case_6_4_1", "case_6_4_2", "case_6_4_3", "case_6_4_4"])
def test_case_6_4_fail_fast(case: str) -> None:
    """Invalid bytes fail the connection before the rest of the message arrives."""
    valid = "κόσμε".encode()
    invalid = b"\xf4\x90\x80\x80"
    protocol = ClientProtocol()
    if case == "case_6_4_1":  # in a later fragment
        protocol.receive_data(text(valid, fin=False))
        protocol.receive_data(frame_bytes(0x0, invalid, fin=False))
    elif case == "case_6_4_2":  # in the middle of one fragment
        protocol.receive_data(text(valid + invalid + valid, fin=False))
    elif case == "case_6_4_3":  # inside one frame sent in parts
        frame = text(valid + invalid + valid * 100)
        protocol.receive_data(frame[: 2 + 2 + len(valid)])
        assert protocol.events_received() == []
        protocol.receive_data(frame[2 + 2 + len(valid) : 2 + 2 + len(valid) + 4])
    else:  # byte by byte inside one frame
        frame = text(valid + invalid + valid * 100)
        for i in range(2 + 2 + len(valid) + 4):
            protocol.receive_data(frame[i : i + 1])
    events = protocol.events_received()
    assert isinstance(events[-1], Failure) and events[-1].code == 1007


# -- 7 Close handling ----------------------------------------------------------


def test_case_7_1_1_echo_then_close() -> None:
    frames = echo_client(text(b"Hello") + close())
    assert frames == [(-1, b"Hello"), (CLOSE, b"\x03\xe8")]


def test_case_7_1_3_data_after_close_is_ignored() -> None:
    frames = echo_client(close() + text(b"ignored") + ping())
    assert frames == [(CLOSE, b"\x03\xe8")]


def test_case_7_1_6_close_after_large_message() -> None:
    payload = os.urandom(256 * 1024)
    frames = echo_client(binary(payload) + close(), chunk=65536)
    assert frames[0] == (-1, payload)


@pytest.mark.parametrize(
    ("case", "data", "code"),
    [
        ("case_7_3_1", close(None), 1000),
        ("case_7_3_2", frame_bytes(0x8, b"\x03"), 1002),
        ("case_7_3_3", close(1000), 1000),
        ("case_7_3_4", close(1000, b"Hello World!"), 1000),
        ("case_7_3_5", close(1000, b"*" * 123), 1000),
        ("case_7_3_6", close(1000, b"*" * 124), 1002),
        ("case_7_5_1", close(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xed\xa0\x80"), 1007),
    ],
)
def test_case_7_close_frame_structure(case: str, data: bytes, code: int) -> None:
    closed_with(echo_client(data), code)


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES, ids=[f"case_7_7_{c}" for c in VALID_CODES])
def test_case_7_7_valid_codes_are_echoed(code: int) -> None:
    closed_with(echo_client(close(code)), code)


@pytest.mark.parametrize("code", INVALID_CODES, ids=[f"case_7_9_{c}" for c in INVALID_CODES])
def test_case_7_9_invalid_codes_fail(code: int) -> None:
    closed_with(echo_client(close(code)), 1002)


# -- 9 Limits and performance ---------------------------------------------------


@pytest.mark.parametrize("size", [2**16, 2**18, 2**20, 4 * 2**20, 16 * 2**20])
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_case_9_1_and_9_2_large_messages(size: int, kind: str) -> None:
    payload = b"*" * size if kind == "text" else os.urandom(size)
    make = text if kind == "text" else binary
    frames = echo_client(make(payload) + close(), chunk=65536, max_size=None)
    assert frames[0] == (-1, payload)


@pytest.mark.parametrize("fragment_size", [64, 4096, 65536])
def test_case_9_3_and_9_4_fragmented_large_message(fragment_size: int) -> None:
    payload = os.urandom(2**20)
    parts = [payload[i : i + fragment_size] for i in range(0, len(payload), fragment_size)]
    data = binary(parts[0], fin=False)
    data += b"".join(frame_bytes(0x0, part, fin=False) for part in parts[1:-1])
    data += frame_bytes(0x0, parts[-1]) + close()
    assert echo_client(data, chunk=65536, max_size=None)[0] == (-1, payload)


def test_case_9_7_many_small_messages() -> None:
    data = b"".join(text(b"*" * 16) for _ in range(5000)) + close()
    frames = echo_client(data, chunk=65536)
    assert frames[:-1] == [(-1, b"*" * 16)] * 5000


def test_limit_max_size_fails_with_1009() -> None:
    closed_with(echo_client(binary(b"x" * 2000), max_size=1000), 1009)


# -- 12 and 13 Compression ------------------------------------------------------


def compressed_messages(
    messages: list[bytes], bits: int, no_context_takeover: bool, fragment: int | None = None
) -> bytes:
    """The server side of permessage-deflate, written from RFC 7692 7.2."""
    compressor = zlib.compressobj(wbits=-max(bits, 9))
    data = b""
    for message in messages:
        if no_context_takeover:
            compressor = zlib.compressobj(wbits=-max(bits, 9))
        body = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
        body = body[:-4]
        if fragment is None or len(body) <= fragment:
            data += text(body, rsv=0x40)
        else:
            pieces = [body[i : i + fragment] for i in range(0, len(body), fragment)]
            data += text(pieces[0], rsv=0x40, fin=False)
            data += b"".join(frame_bytes(0x0, p, fin=False) for p in pieces[1:-1])
            data += frame_bytes(0x0, pieces[-1])
    return data


@pytest.mark.parametrize("size", [16, 64, 256, 1024, 4096, 8192, 65536, 131072])
@pytest.mark.parametrize("fragment", [None, 1024])
def test_case_12_compressed_payloads(size: int, fragment: int | None) -> None:
    messages = [(b"Hello, JSON! " * (size // 13 + 1))[:size] for _ in range(5)]
    data = compressed_messages(messages, 15, False, fragment) + close()
    extension = PerMessageDeflate(False, False, 15, 15)
    frames = echo_client(data, extensions=[extension], chunk=8192)
    assert [payload for _, payload in frames[:-1]] != messages  # echoed compressed
    decoder = PerMessageDeflate(False, False, 15, 15)
    from requests_ws.frames import Frame

    echoed = []
    # The client's echoes are compressed too: inflate them like a server would.
    for _, payload in frames[:-1]:
        echoed.append(decoder.decode(Frame(OP_TEXT, payload, rsv1=True)).data)
    assert echoed == messages


@pytest.mark.parametrize("bits", range(8, 16))
@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_case_13_compression_parameters(bits: int, no_context_takeover: bool) -> None:
    messages = [os.urandom(20).hex().encode() * 20 for _ in range(10)]
    data = compressed_messages(messages, bits, no_context_takeover) + close()
    extension = PerMessageDeflate(no_context_takeover, no_context_takeover, bits, bits)
    protocol = ClientProtocol(extensions=[extension])
    protocol.receive_data(data)
    received = [event.data for event in protocol.events_received() if isinstance(event, Fragment)]
    assert received == [message.decode() for message in messages]


def test_case_12_uncompressed_message_on_a_compressed_connection() -> None:
    extension = PerMessageDeflate(False, False, 15, 15)
    protocol = ClientProtocol(extensions=[extension])
    protocol.receive_data(text(b"plain") + compressed_messages([b"packed"], 15, False))
    events = protocol.events_received()
    assert [event.data for event in events if isinstance(event, Fragment)] == ["plain", "packed"]


def test_close_payload_helper_matches_rfc() -> None:
    assert close_payload(1000, "x") == b"\x03\xe8x"
