"""Conformance cases, organised like the Autobahn TestSuite's categories and
written from RFC 6455 and RFC 7692.

Each case plays the server at the sans-I/O level: it feeds bytes to
:class:`ClientProtocol` (whole, frame by frame, or octet by octet) and drives
it the way :class:`ClientConnection` does under an echo application: messages
are echoed, pings answered with ``send_pong``, a close frame answered with a
close frame echoing its code (1000 for an empty one), a failure answered with
``fail`` and the failure's code. The case checks the client's frames, unmasked,
in the order they were produced.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from requests_ws.extensions import ClientPerMessageDeflateFactory, PerMessageDeflate
from requests_ws.frames import OP_BINARY, OP_CONT, OP_TEXT
from requests_ws.protocol import ClientProtocol, CloseReceived, Failure, Fragment, Ping, State

from .peers.raw_peer import frame_bytes
from .test_frames import split_client_frames

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass
class Sent:
    """A frame the client sent: data messages are joined, as (opcode, payload)."""

    opcode: int
    payload: bytes
    rsv1: bool = False


@dataclass
class Run:
    sent: list[Sent] = field(default_factory=list)
    failure: Failure | None = None
    # Number of server octets fed when the client failed the connection.
    failed_after: int | None = None
    protocol: ClientProtocol | None = None

    @property
    def echoes(self) -> list[tuple[int, bytes]]:
        return [(s.opcode, s.payload) for s in self.sent if s.opcode in (TEXT, BINARY)]

    @property
    def pongs(self) -> list[bytes]:
        return [s.payload for s in self.sent if s.opcode == PONG]

    @property
    def close_code(self) -> int | None:
        closes = [s for s in self.sent if s.opcode == CLOSE]
        assert len(closes) <= 1, "the client sent more than one close frame"
        if not closes:
            return None
        assert self.sent[-1].opcode == CLOSE, "the client sent a frame after its close frame"
        payload = closes[0].payload
        return struct.unpack("!H", payload[:2])[0] if payload else 1005


def client_frames(data: bytes) -> list[Sent]:
    """The client's frames, unmasked; fragments of a data message joined."""
    frames: list[Sent] = []
    message: Sent | None = None
    for header, payload in split_client_frames(data):
        assert header[1] & 0x80, "client frames are masked"
        opcode, fin, rsv1 = header[0] & 0x0F, bool(header[0] & 0x80), bool(header[0] & 0x40)
        if opcode == OP_CONT:
            assert message is not None, "continuation frame without a message"
            message.payload += payload
        elif opcode in (OP_TEXT, OP_BINARY):
            assert message is None, "new message inside a fragmented message"
            message = Sent(opcode, payload, rsv1)
        else:
            frames.append(Sent(opcode, payload))
            continue
        if fin:
            frames.append(message)
            message = None
    return frames


def echo(
    pieces: Sequence[bytes],
    *,
    max_size: int | None = 2**24,
    extensions: Sequence[PerMessageDeflate] = (),
) -> Run:
    """Run the echo application over the server's bytes, read by read."""
    protocol = ClientProtocol(max_size=max_size, extensions=extensions)
    run = Run(protocol=protocol)
    sent = b""
    message: list[str | bytes] = []
    fed = 0
    for piece in pieces:
        fed += len(piece)
        protocol.receive_data(piece)
        for event in protocol.events_received():
            if isinstance(event, Fragment):
                message.append(event.data)
                if event.fin:
                    if event.is_text:
                        payload = "".join(map(str, message)).encode()
                        header, body = protocol.send_data(OP_TEXT, payload)
                    else:
                        joined = b"".join(part for part in message if isinstance(part, bytes))
                        header, body = protocol.send_data(OP_BINARY, joined)
                    sent += header + body
                    message = []
            elif isinstance(event, Ping):
                sent += protocol.send_pong(event.data)
            elif isinstance(event, CloseReceived):
                code = 1000 if event.close.code == 1005 else event.close.code
                sent += protocol.send_close(code)
            elif isinstance(event, Failure):
                run.failure = event
                run.failed_after = fed
                sent += protocol.fail(event.code, event.reason)
    run.sent = client_frames(sent)
    return run


# Deliveries: how the server's bytes reach the client.


def whole(*frames: bytes) -> list[bytes]:
    return [b"".join(frames)]


def framewise(*frames: bytes) -> list[bytes]:
    return list(frames)


def octetwise(*frames: bytes) -> list[bytes]:
    data = b"".join(frames)
    return [data[i : i + 1] for i in range(len(data))]


def chops(size: int, *frames: bytes) -> list[bytes]:
    data = b"".join(frames)
    return [data[i : i + size] for i in range(0, len(data), size)]


def text(payload: bytes | str, *, fin: bool = True, rsv: int = 0) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return frame_bytes(TEXT, data, fin=fin, rsv=rsv)


def binary(payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    return frame_bytes(BINARY, payload, fin=fin, rsv=rsv)


def cont(payload: bytes | str, *, fin: bool = True) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return frame_bytes(0x0, data, fin=fin)


def ping(payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    return frame_bytes(PING, payload, fin=fin, rsv=rsv)


def pong(payload: bytes = b"", *, fin: bool = True) -> bytes:
    return frame_bytes(PONG, payload, fin=fin)


def close(code: int | None = 1000, reason: bytes = b"", *, rsv: int = 0) -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame_bytes(CLOSE, payload, rsv=rsv)


def assert_clean_close(run: Run, code: int = 1000) -> None:
    assert run.failure is None, run.failure
    assert run.close_code == code


def assert_failed(run: Run, code: int) -> None:
    assert run.failure is not None, "the client did not fail the connection"
    assert run.failure.code == code, run.failure
    assert run.close_code == code
    assert len(run.failure.reason.encode()) <= 123


def ids(prefix: str, count: int, start: int = 1) -> list[str]:
    return [f"case_{prefix}_{i}" for i in range(start, start + count)]


# -- 1 Framing ----------------------------------------------------------------------

FRAMING_SIZES = [0, 125, 126, 127, 128, 65535, 65536]


@pytest.mark.parametrize("size", [*FRAMING_SIZES, 65536], ids=ids("1_1", 8))
def test_case_1_1_text_messages(size: int, request: pytest.FixtureRequest) -> None:
    payload = b"*" * size
    chopped = request.node.callspec.id == "case_1_1_8"  # in chops of 997 octets
    frames = (text(payload), close())
    run = echo(chops(997, *frames) if chopped else whole(*frames))
    assert run.echoes == [(TEXT, payload)]
    assert_clean_close(run)


@pytest.mark.parametrize("size", [*FRAMING_SIZES, 65536], ids=ids("1_2", 8))
def test_case_1_2_binary_messages(size: int, request: pytest.FixtureRequest) -> None:
    payload = bytes([0xFE]) * size
    chopped = request.node.callspec.id == "case_1_2_8"
    frames = (binary(payload), close())
    run = echo(chops(997, *frames) if chopped else whole(*frames))
    assert run.echoes == [(BINARY, payload)]
    assert_clean_close(run)


# -- 2 Pings/Pongs -------------------------------------------------------------------

BINARY_PING = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"

PING_CASES = [
    ("case_2_1", whole(ping(), close()), [b""]),
    ("case_2_2", whole(ping(b"Hello, world!"), close()), [b"Hello, world!"]),
    ("case_2_3", whole(ping(BINARY_PING), close()), [BINARY_PING]),
    ("case_2_4", whole(ping(b"\xfe" * 125), close()), [b"\xfe" * 125]),
    ("case_2_6", octetwise(ping(b"\xfe" * 125), close()), [b"\xfe" * 125]),
    ("case_2_7", whole(pong(), close()), []),
    ("case_2_8", whole(pong(b"unsolicited pong payload"), close()), []),
    ("case_2_9", whole(pong(b"unsolicited"), ping(b"ping payload"), close()), [b"ping payload"]),
    (
        "case_2_10",
        whole(*[ping(f"payload-{i}".encode()) for i in range(10)], close()),
        [f"payload-{i}".encode() for i in range(10)],
    ),
    (
        "case_2_11",
        octetwise(*[ping(f"payload-{i}".encode()) for i in range(10)], close()),
        [f"payload-{i}".encode() for i in range(10)],
    ),
]


@pytest.mark.parametrize(
    ("pieces", "pongs"), [case[1:] for case in PING_CASES], ids=[case[0] for case in PING_CASES]
)
def test_case_2_ping_pong(pieces: list[bytes], pongs: list[bytes]) -> None:
    run = echo(pieces)
    assert run.pongs == pongs
    assert [s.opcode for s in run.sent] == [PONG] * len(pongs) + [CLOSE]
    assert_clean_close(run)


@pytest.mark.parametrize("size", [126, 127, 1000, 65536], ids=ids("2_5", 4))
def test_case_2_5_ping_payload_too_long(size: int) -> None:
    run = echo(whole(ping(b"\xfe" * size), close()))
    assert run.pongs == []
    assert_failed(run, 1002)


def test_case_2_pong_frame_is_byte_exact() -> None:
    """The answer to a ping: FIN + PONG, masked, the ping's payload echoed."""
    protocol = ClientProtocol()
    for payload in [b"", b"Hello, world!", BINARY_PING, b"\xfe" * 125]:
        frame = protocol.send_pong(payload)
        assert frame[0] == 0x8A
        assert frame[1] == 0x80 | len(payload)
        assert len(frame) == 2 + 4 + len(payload)
        ((_, unmasked),) = split_client_frames(frame)
        assert unmasked == payload


# -- 3 Reserved bits -----------------------------------------------------------------
# Autobahn's RSV value n sets the three reserved bits to n (RSV1 = 4, RSV3 = 1).

RSV_CASES = [
    ("case_3_1", whole, text(b"Hello, world!", rsv=0x10)),
    ("case_3_2", whole, text(b"Hello, world!", rsv=0x20)),
    ("case_3_3", framewise, text(b"Hello, world!", rsv=0x30)),
    ("case_3_4", octetwise, text(b"Hello, world!", rsv=0x40)),
    ("case_3_5", whole, binary(bytes(range(256)) * 4, rsv=0x50)),
    ("case_3_6", whole, ping(b"Hello, world!", rsv=0x60)),
    ("case_3_7", whole, close(1000, rsv=0x70)),
]


@pytest.mark.parametrize(
    ("deliver", "frame"), [case[1:] for case in RSV_CASES], ids=[case[0] for case in RSV_CASES]
)
def test_case_3_reserved_bits(deliver: object, frame: bytes) -> None:
    assert callable(deliver)
    run = echo(deliver(text(b"Hello, world!"), frame, ping(b"after")))
    assert run.echoes == [(TEXT, b"Hello, world!")]
    assert run.pongs == []
    assert_failed(run, 1002)


# -- 4 Opcodes -------------------------------------------------------------------------

OPCODE_CASES = [
    ("case_4_1_1", 3, b"", False),
    ("case_4_1_2", 4, b"reserved opcode payload", False),
    ("case_4_1_3", 5, b"", True),
    ("case_4_1_4", 6, b"reserved opcode payload", True),
    ("case_4_1_5", 7, b"reserved opcode payload", True),
    ("case_4_2_1", 11, b"", False),
    ("case_4_2_2", 12, b"reserved opcode payload", False),
    ("case_4_2_3", 13, b"", True),
    ("case_4_2_4", 14, b"reserved opcode payload", True),
    ("case_4_2_5", 15, b"reserved opcode payload", True),
]


@pytest.mark.parametrize(
    ("opcode", "payload", "surrounded"),
    [case[1:] for case in OPCODE_CASES],
    ids=[case[0] for case in OPCODE_CASES],
)
@pytest.mark.parametrize("deliver", [whole, octetwise], ids=["whole", "octetwise"])
def test_case_4_reserved_opcodes(
    opcode: int, payload: bytes, surrounded: bool, deliver: object
) -> None:
    assert callable(deliver)
    frames = [frame_bytes(opcode, payload)]
    if surrounded:
        frames = [text(b"Hello, world!"), *frames, ping(b"after")]
    run = echo(deliver(*frames))
    assert run.echoes == ([(TEXT, b"Hello, world!")] if surrounded else [])
    assert run.pongs == []
    assert_failed(run, 1002)


# -- 5 Fragmentation ----------------------------------------------------------------------

FRAGMENTED = (text("fragment1", fin=False), cont("fragment2"))
WITH_PING = (text("fragment1", fin=False), ping(b"pongme!"), cont("fragment2"))

FRAGMENTATION_OK = [
    ("case_5_3", whole(*FRAGMENTED, close()), []),
    ("case_5_4", octetwise(*FRAGMENTED, close()), []),
    ("case_5_5", framewise(*FRAGMENTED, close()), []),
    ("case_5_6", whole(*WITH_PING, close()), [b"pongme!"]),
    ("case_5_7", octetwise(*WITH_PING, close()), [b"pongme!"]),
    ("case_5_8", framewise(*WITH_PING, close()), [b"pongme!"]),
]


@pytest.mark.parametrize(
    ("pieces", "pongs"),
    [case[1:] for case in FRAGMENTATION_OK],
    ids=[case[0] for case in FRAGMENTATION_OK],
)
def test_case_5_fragmented_messages(pieces: list[bytes], pongs: list[bytes]) -> None:
    run = echo(pieces)
    assert run.echoes == [(TEXT, b"fragment1fragment2")]
    assert run.pongs == pongs
    if pongs:  # the pong goes out before the echo of the message it interrupted
        assert [s.opcode for s in run.sent] == [PONG, TEXT, CLOSE]
    assert_clean_close(run)


ORPHAN_TRUE = (cont("non-continuation payload"), text("Hello, world!"))
ORPHAN_FALSE = (cont("non-continuation payload", fin=False), text("Hello, world!"))

FRAGMENTATION_ERRORS = [
    ("case_5_1", whole(ping(b"fragment1", fin=False), cont("fragment2")), []),
    ("case_5_2", whole(pong(b"fragment1", fin=False), cont("fragment2")), []),
    ("case_5_9", whole(*ORPHAN_TRUE), []),
    ("case_5_10", framewise(*ORPHAN_TRUE), []),
    ("case_5_11", octetwise(*ORPHAN_TRUE), []),
    ("case_5_12", whole(*ORPHAN_FALSE), []),
    ("case_5_13", framewise(*ORPHAN_FALSE), []),
    ("case_5_14", octetwise(*ORPHAN_FALSE), []),
    (
        "case_5_15",
        whole(*FRAGMENTED, cont("fragment3", fin=False), text("fragment4")),
        [(TEXT, b"fragment1fragment2")],
    ),
    (
        "case_5_16",
        whole(*[cont("x", fin=False), text("fragment1", fin=False), cont("fragment2")] * 2),
        [],
    ),
    ("case_5_17", whole(*[cont("x"), text("fragment1", fin=False), cont("fragment2")] * 2), []),
    ("case_5_18", whole(text("fragment1", fin=False), text("fragment2")), []),
]


@pytest.mark.parametrize(
    ("pieces", "echoes"),
    [case[1:] for case in FRAGMENTATION_ERRORS],
    ids=[case[0] for case in FRAGMENTATION_ERRORS],
)
def test_case_5_fragmentation_errors(pieces: list[bytes], echoes: list[tuple[int, bytes]]) -> None:
    run = echo(pieces)
    assert run.echoes == echoes
    assert_failed(run, 1002)


@pytest.mark.parametrize("deliver", [whole, framewise], ids=["case_5_19", "case_5_20"])
def test_case_5_19_and_5_20_pings_answered_before_the_message_ends(deliver: object) -> None:
    """Five fragments, a ping after the second and after the fourth: each pong
    leaves before the rest of the message has even arrived."""
    assert callable(deliver)
    first = deliver(text("fragment1", fin=False), cont("fragment2", fin=False), ping(b"pongme 1!"))
    second = deliver(cont("fragment3", fin=False), cont("fragment4", fin=False), ping(b"pongme 2!"))
    last = deliver(cont("fragment5"), close())
    run = echo(first)
    assert [(s.opcode, s.payload) for s in run.sent] == [(PONG, b"pongme 1!")]
    run = echo(first + second + last)
    assert [(s.opcode, s.payload) for s in run.sent] == [
        (PONG, b"pongme 1!"),
        (PONG, b"pongme 2!"),
        (TEXT, b"fragment1fragment2fragment3fragment4fragment5"),
        (CLOSE, b"\x03\xe8"),
    ]


def test_case_5_many_fragments() -> None:
    parts = [bytes([i % 256]) * 64 for i in range(1000)]
    frames = [binary(parts[0], fin=False)]
    frames += [cont(part, fin=False) for part in parts[1:-1]]
    frames += [cont(parts[-1]), close()]
    run = echo(chops(4096, *frames))
    assert run.echoes == [(BINARY, b"".join(parts))]


# -- 6 UTF-8 handling ------------------------------------------------------------------------

# κόσμε, with U+1F79 (ό as the suite spells it, three octets).
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()


def test_case_6_1_1_empty_text() -> None:
    run = echo(whole(text(b""), close()))
    assert run.echoes == [(TEXT, b"")]


def test_case_6_1_2_empty_fragments() -> None:
    run = echo(whole(text(b"", fin=False), cont(b"", fin=False), cont(b""), close()))
    assert run.echoes == [(TEXT, b"")]


def test_case_6_1_3_first_and_last_fragments_empty() -> None:
    run = echo(whole(text(b"", fin=False), cont(b"middle frame payload", fin=False), cont(b"")))
    assert run.echoes == [(TEXT, b"middle frame payload")]


VALID_DELIVERIES = {
    "case_6_2_1": lambda payload: whole(text(payload), close()),
    "case_6_2_2": lambda payload: whole(
        text(payload[:2], fin=False), cont(payload[2:]), close()
    ),  # cut at a code point boundary (Hello-µ: "He" | "llo-µ...")
    "case_6_2_3": lambda payload: whole(*octet_frames(payload), close()),
    "case_6_2_4": lambda payload: whole(*octet_frames(payload), close()),
}


def octet_frames(payload: bytes) -> list[bytes]:
    """One frame per octet, so that frames end inside code points."""
    if len(payload) <= 1:
        return [text(payload)]
    frames = [text(payload[:1], fin=False)]
    frames += [cont(payload[i : i + 1], fin=False) for i in range(1, len(payload) - 1)]
    return [*frames, cont(payload[-1:])]


@pytest.mark.parametrize("case", list(VALID_DELIVERIES))
def test_case_6_2_valid_utf8_fragments(case: str) -> None:
    payload = KOSME if case == "case_6_2_4" else HELLO
    run = echo(VALID_DELIVERIES[case](payload))
    assert run.echoes == [(TEXT, payload)]
    assert_clean_close(run)


INVALID_KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"


@pytest.mark.parametrize("fragmented", [False, True], ids=["case_6_3_1", "case_6_3_2"])
def test_case_6_3_invalid_utf8(fragmented: bool) -> None:
    frames = octet_frames(INVALID_KOSME) if fragmented else [text(INVALID_KOSME)]
    run = echo(whole(*frames, close()))
    assert run.echoes == []
    assert_failed(run, 1007)


FAIL_FAST_VALID = KOSME  # 11 octets
FAIL_FAST_INVALID = b"\xf4\x90\x80\x80"  # above U+10FFFF: invalid from its second octet
FAIL_FAST_TAIL = b"\x65\x64\x69\x74\x65\x64"  # "edited"


def test_case_6_4_1_fail_fast_in_the_second_fragment() -> None:
    """Three fragments; the second is invalid; the third never matters."""
    first = text(FAIL_FAST_VALID, fin=False)
    second = cont(FAIL_FAST_INVALID, fin=False)
    run = echo([first, second])
    assert_failed(run, 1007)
    assert run.failed_after == len(first) + len(second)


def test_case_6_4_2_fail_fast_inside_the_first_fragment() -> None:
    """The first fragment ends with the first octet of the invalid sequence:
    the failure comes with the second fragment, the third is not needed."""
    first = text(FAIL_FAST_VALID + FAIL_FAST_INVALID[:1], fin=False)
    run = echo([first])
    assert run.failure is None  # F4 alone may still start a valid code point
    second = cont(FAIL_FAST_INVALID[1:2], fin=False)
    run = echo([first, second])
    assert_failed(run, 1007)
    assert run.failed_after == len(first) + len(second)


def test_case_6_4_3_fail_fast_inside_one_frame() -> None:
    """One frame sent in three chops: the failure comes with the second chop,
    long before the frame is complete."""
    frame = text(FAIL_FAST_VALID + FAIL_FAST_INVALID + FAIL_FAST_TAIL)
    cut = 2 + len(FAIL_FAST_VALID)
    first, second = frame[:cut], frame[cut : cut + len(FAIL_FAST_INVALID)]
    run = echo([first])
    assert run.failure is None
    run = echo([first, second, frame[cut + len(FAIL_FAST_INVALID) :]])
    assert_failed(run, 1007)
    assert run.failed_after == cut + len(FAIL_FAST_INVALID)


def test_case_6_4_4_fail_fast_at_the_first_invalid_octet() -> None:
    """Same frame, cut inside the invalid sequence: F4 is still a possible
    start, F4 90 is not, so the failure comes with the octet 90."""
    frame = text(FAIL_FAST_VALID + FAIL_FAST_INVALID + FAIL_FAST_TAIL)
    cut = 2 + len(FAIL_FAST_VALID) + 1
    run = echo([frame[:cut]])
    assert run.failure is None
    run = echo([frame[:cut], frame[cut : cut + 1], frame[cut + 1 :]])
    assert_failed(run, 1007)
    assert run.failed_after == cut + 1


def utf8_cases() -> list[tuple[str, bytes, bool]]:
    """(case id, payload, valid) for Autobahn sections 6.5 to 6.23."""
    cases: list[tuple[str, bytes, bool]] = []

    def add(section: str, payloads: Sequence[bytes], valid: bool | Sequence[bool]) -> None:
        flags = [valid] * len(payloads) if isinstance(valid, bool) else list(valid)
        for index, (payload, flag) in enumerate(zip(payloads, flags, strict=True), start=1):
            cases.append((f"case_6_{section}_{index}", payload, flag))

    add(
        "5",
        [KOSME, "κόσμε€𝄞".encode(), b"\x7f" * 10, "ⓦⓔⓑⓢⓞⓒⓚⓔⓣⓢ".encode(), "\U0010ffff".encode()],
        True,
    )
    # 6.6: every prefix of κόσμε; valid exactly at code point boundaries.
    add("6", [KOSME[:n] for n in range(1, 12)], [n in (2, 5, 7, 9, 11) for n in range(1, 12)])
    add("7", [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"], True)
    add("8", [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"], False)
    add("9", [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"], True)
    add("10", [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"], False)
    add(
        "11",
        [
            b"\xed\x9f\xbf",
            b"\xee\x80\x80",
            b"\xef\xbf\xbd",
            b"\xf4\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80",
        ],
        [True, True, True, True, False],
    )
    continuation = [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf"]
    continuation += [b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xC0))]
    add("12", continuation, False)
    add(
        "13",
        [
            b"".join(bytes([c, 0x20]) for c in range(0xC0, 0xE0)),
            b"".join(bytes([c, 0x20]) for c in range(0xE0, 0xF0)),
            b"".join(bytes([c, 0x20]) for c in range(0xF0, 0xF8)),
            b"".join(bytes([c, 0x20]) for c in range(0xF8, 0xFC)),
            b"".join(bytes([c, 0x20]) for c in range(0xFC, 0xFE)),
        ],
        False,
    )
    missing_last = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80"]
    missing_last += [b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf"]
    missing_last += [b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    add("14", missing_last, False)
    add("15", [b"".join(missing_last)], False)
    add("16", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"], False)
    add(
        "17",
        [
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xf0\x80\x80\xaf",
            b"\xf8\x80\x80\x80\xaf",
            b"\xfc\x80\x80\x80\x80\xaf",
        ],
        False,
    )
    add(
        "18",
        [
            b"\xc1\xbf",
            b"\xe0\x9f\xbf",
            b"\xf0\x8f\xbf\xbf",
            b"\xf8\x87\xbf\xbf\xbf",
            b"\xfc\x83\xbf\xbf\xbf\xbf",
        ],
        False,
    )
    add(
        "19",
        [
            b"\xc0\x80",
            b"\xe0\x80\x80",
            b"\xf0\x80\x80\x80",
            b"\xf8\x80\x80\x80\x80",
            b"\xfc\x80\x80\x80\x80\x80",
        ],
        False,
    )
    surrogates = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"]
    surrogates += [b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]
    add("20", surrogates, False)
    high = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"]
    add("21", [h + low for h in high for low in (b"\xed\xb0\x80", b"\xed\xbf\xbf")], False)
    # Noncharacters are valid UTF-8: U+xFFFE and U+xFFFF of all 17 planes.
    nonchars = [
        chr(plane << 16 | last).encode() for plane in range(17) for last in (0xFFFE, 0xFFFF)
    ]
    add("22", nonchars, True)
    add(
        "23", ["\ufffd".encode(), "\ufeff".encode(), "\u200b".encode(), "\U0001f600".encode()], True
    )
    return cases


UTF8_CASES = utf8_cases()


@pytest.mark.parametrize(
    ("payload", "valid"), [case[1:] for case in UTF8_CASES], ids=[case[0] for case in UTF8_CASES]
)
@pytest.mark.parametrize("delivery", ["frame", "octet_frames", "octet_reads"])
def test_case_6_utf8(payload: bytes, valid: bool, delivery: str) -> None:
    assert valid == is_utf8(payload)  # the table agrees with an independent check
    if delivery == "frame":
        pieces = whole(text(payload), close())
    elif delivery == "octet_frames":
        pieces = whole(*octet_frames(payload), close())
    else:
        pieces = octetwise(text(payload + b"padding"), close())
        payload += b"padding"
    run = echo(pieces)
    if valid:
        assert run.echoes == [(TEXT, payload)]
        assert_clean_close(run)
        return
    assert run.echoes == []
    assert_failed(run, 1007)
    if delivery == "octet_reads":
        # Fail fast: with the very octet that no valid UTF-8 could continue,
        # long before the frame ends.
        assert run.failed_after == 2 + earliest_detection(payload)
        assert run.failed_after - 2 < len(payload)


def is_utf8(data: bytes) -> bool:
    """Table 3-7 of the Unicode standard, written out: an independent validator."""
    return first_invalid_octet(data) == -1


def earliest_detection(data: bytes) -> int:
    """How many octets it takes to know that ``data`` is not UTF-8: the
    shortest prefix that no octets could complete into valid UTF-8."""
    for size in range(1, len(data) + 1):
        invalid_at = first_invalid_octet(data[:size])
        if invalid_at == -1:
            continue
        # Invalid only because it is cut short? Then more octets may fix it.
        if not any(is_utf8(data[:size] + tail) for tail in COMPLETIONS):
            return size
    raise AssertionError("valid UTF-8")


# Enough continuation octets to complete any valid prefix, in every range.
COMPLETIONS = [bytes([first, 0x80, 0x80])[:n] for first in (0x80, 0x90, 0xA0) for n in (1, 2, 3)]


def first_invalid_octet(data: bytes) -> int:
    i = 0
    while i < len(data):
        byte = data[i]
        if byte < 0x80:
            i += 1
            continue
        if 0xC2 <= byte <= 0xDF:
            ranges = [(0x80, 0xBF)]
        elif byte == 0xE0:
            ranges = [(0xA0, 0xBF), (0x80, 0xBF)]
        elif 0xE1 <= byte <= 0xEC or 0xEE <= byte <= 0xEF:
            ranges = [(0x80, 0xBF)] * 2
        elif byte == 0xED:
            ranges = [(0x80, 0x9F), (0x80, 0xBF)]
        elif byte == 0xF0:
            ranges = [(0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)]
        elif 0xF1 <= byte <= 0xF3:
            ranges = [(0x80, 0xBF)] * 3
        elif byte == 0xF4:
            ranges = [(0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)]
        else:
            return i
        for offset, (low, high) in enumerate(ranges, start=1):
            if i + offset >= len(data) or not low <= data[i + offset] <= high:
                return i
        i += 1 + len(ranges)
    return -1


# -- 7 Close handling ----------------------------------------------------------------------


def test_case_7_1_1_echo_then_close() -> None:
    run = echo(whole(text(b"Hello World!"), close()))
    assert [(s.opcode, s.payload) for s in run.sent] == [
        (TEXT, b"Hello World!"),
        (CLOSE, b"\x03\xe8"),
    ]
    protocol = run.protocol
    assert protocol is not None
    assert protocol.close_rcvd_then_sent is True
    protocol.receive_eof()
    assert protocol.state is State.CLOSED


def test_case_7_1_2_second_close_is_ignored() -> None:
    run = echo(whole(close(), close()))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]


def test_case_7_1_3_ping_after_close_is_ignored() -> None:
    run = echo(whole(close(), ping(b"Hello World!")))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]


def test_case_7_1_4_text_after_close_is_ignored() -> None:
    run = echo(whole(close(), text(b"Hello World!")))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]


def test_case_7_1_5_close_inside_a_fragmented_message() -> None:
    run = echo(whole(text(b"fragment1", fin=False), close(), cont(b"fragment2")))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]
    assert run.failure is None


def test_case_7_1_6_large_message_then_close_then_ping() -> None:
    payload = b"BAsd7&jh23" * 26214  # 256 KiB, give or take
    run = echo(chops(65536, text(payload), close(), ping(b"Hello World!")))
    assert [s.opcode for s in run.sent] == [TEXT, CLOSE]
    assert run.echoes == [(TEXT, payload)]


def test_case_7_client_initiated_close() -> None:
    protocol = ClientProtocol()
    frame = protocol.send_close(1000, "bye")
    assert [(s.opcode, s.payload) for s in client_frames(frame)] == [(CLOSE, b"\x03\xe8bye")]
    assert protocol.state is State.CLOSING
    protocol.receive_data(text(b"still arriving") + close(1000))
    events = protocol.events_received()
    assert isinstance(events[-1], CloseReceived)
    assert protocol.close_rcvd_then_sent is False


CLOSE_STRUCTURE = [
    ("case_7_3_1", close(None), 1000),
    ("case_7_3_2", frame_bytes(CLOSE, b"\x03"), 1002),
    ("case_7_3_3", close(1000), 1000),
    ("case_7_3_4", close(1000, b"Hello World!"), 1000),
    ("case_7_3_5", close(1000, b"*" * 123), 1000),
    ("case_7_3_6", close(1000, b"*" * 124), 1002),
    ("case_7_5_1", close(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007),
]


@pytest.mark.parametrize(
    ("data", "code"),
    [case[1:] for case in CLOSE_STRUCTURE],
    ids=[case[0] for case in CLOSE_STRUCTURE],
)
@pytest.mark.parametrize("deliver", [whole, octetwise], ids=["whole", "octetwise"])
def test_case_7_close_frame_structure(data: bytes, code: int, deliver: object) -> None:
    assert callable(deliver)
    run = echo(deliver(data))
    assert run.close_code == code
    assert (run.failure is None) == (code == 1000)


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]


@pytest.mark.parametrize("code", VALID_CODES, ids=ids("7_7", len(VALID_CODES)))
def test_case_7_7_valid_codes_are_echoed(code: int) -> None:
    run = echo(whole(close(code, b"Hello World!")))
    assert_clean_close(run, code)
    ((_, payload),) = [(s.opcode, s.payload) for s in run.sent]
    assert payload == struct.pack("!H", code)


@pytest.mark.parametrize("code", [1012, 1013, 1014], ids=["iana_1012", "iana_1013", "iana_1014"])
def test_case_7_7_registered_codes_beyond_the_rfc(code: int) -> None:
    assert_clean_close(echo(whole(close(code))), code)


@pytest.mark.parametrize("code", INVALID_CODES, ids=ids("7_9", len(INVALID_CODES)))
def test_case_7_9_invalid_codes_fail(code: int) -> None:
    assert_failed(echo(whole(close(code))), 1002)


@pytest.mark.parametrize("code", [5000, 65535], ids=ids("7_13", 2))
def test_case_7_13_codes_above_4999_fail(code: int) -> None:
    assert_failed(echo(whole(close(code))), 1002)


# -- 9 Limits and performance --------------------------------------------------------------------

LARGE = [2**16, 2**18, 2**20, 4 * 2**20, 8 * 2**20, 16 * 2**20]


@pytest.mark.parametrize("size", LARGE, ids=ids("9_1", len(LARGE)))
def test_case_9_1_large_text_messages(size: int) -> None:
    payload = b"BAsd7&jh23" * (size // 10) + b"*" * (size % 10)
    run = echo(chops(2**16, text(payload), close()), max_size=None)
    assert run.echoes == [(TEXT, payload)]
    assert_clean_close(run)


@pytest.mark.parametrize("size", LARGE, ids=ids("9_2", len(LARGE)))
def test_case_9_2_large_binary_messages(size: int) -> None:
    payload = b"\xfe" * size
    run = echo(chops(2**16, binary(payload), close()), max_size=None)
    assert run.echoes == [(BINARY, payload)]


FRAGMENT_SIZES = [64, 256, 2**10, 2**12, 2**14, 2**16, 2**18, 2**20, 2**22]


def fragmented(opcode: int, payload: bytes, size: int) -> list[bytes]:
    parts = [payload[i : i + size] for i in range(0, len(payload), size)]
    frames = [frame_bytes(opcode, parts[0], fin=len(parts) == 1)]
    frames += [cont(part, fin=i == len(parts) - 1) for i, part in enumerate(parts) if i]
    return frames


@pytest.mark.parametrize("size", FRAGMENT_SIZES, ids=ids("9_3", len(FRAGMENT_SIZES)))
def test_case_9_3_fragmented_text(size: int) -> None:
    payload = b"*" * 2**22
    run = echo(chops(2**16, *fragmented(TEXT, payload, size), close()), max_size=None)
    assert run.echoes == [(TEXT, payload)]


@pytest.mark.parametrize("size", FRAGMENT_SIZES, ids=ids("9_4", len(FRAGMENT_SIZES)))
def test_case_9_4_fragmented_binary(size: int) -> None:
    payload = b"\xfe" * 2**22
    run = echo(chops(2**16, *fragmented(BINARY, payload, size), close()), max_size=None)
    assert run.echoes == [(BINARY, payload)]


CHOPS = [64, 128, 256, 512, 1024, 2048]


@pytest.mark.parametrize("chop", CHOPS, ids=ids("9_5", len(CHOPS)))
def test_case_9_5_text_in_chops(chop: int) -> None:
    payload = "€𝄞é".encode() * (2**20 // 9)
    run = echo(chops(chop, text(payload), close()), max_size=None)
    assert run.echoes == [(TEXT, payload)]


@pytest.mark.parametrize("chop", CHOPS, ids=ids("9_6", len(CHOPS)))
def test_case_9_6_binary_in_chops(chop: int) -> None:
    payload = b"\xfe" * 2**20
    run = echo(chops(chop, binary(payload), close()), max_size=None)
    assert run.echoes == [(BINARY, payload)]


MANY = [0, 16, 64, 256, 1024, 4096]


@pytest.mark.parametrize("size", MANY, ids=ids("9_7", len(MANY)))
def test_case_9_7_many_text_messages(size: int) -> None:
    frames = [text(b"*" * size)] * 1000 + [close()]
    run = echo(chops(2**16, *frames))
    assert run.echoes == [(TEXT, b"*" * size)] * 1000


@pytest.mark.parametrize("size", MANY, ids=ids("9_8", len(MANY)))
def test_case_9_8_many_binary_messages(size: int) -> None:
    frames = [binary(b"\xfe" * size)] * 1000 + [close()]
    run = echo(chops(2**16, *frames))
    assert run.echoes == [(BINARY, b"\xfe" * size)] * 1000


@pytest.mark.parametrize("deliver", [whole, octetwise], ids=["whole", "octetwise"])
def test_case_9_max_size_fails_with_1009(deliver: object) -> None:
    assert callable(deliver)
    run = echo(deliver(text(b"ok"), binary(b"x" * 2000), ping()), max_size=1000)
    assert run.echoes == [(TEXT, b"ok")]
    assert run.pongs == []
    assert_failed(run, 1009)


# -- 12 and 13 Compression (RFC 7692) ----------------------------------------------------------


class DeflateServer:
    """The server's side of permessage-deflate, written from RFC 7692 7.2."""

    def __init__(self, window_bits: int, no_context_takeover: bool) -> None:
        # zlib cannot produce raw deflate with an 8-bit window; 9 is the
        # smallest it makes (and the client inflates with any window).
        self.window_bits = max(window_bits, 9)
        self.no_context_takeover = no_context_takeover
        self.compressor = zlib.compressobj(wbits=-self.window_bits)

    def compress(self, message: bytes) -> bytes:
        if self.no_context_takeover:
            self.compressor = zlib.compressobj(wbits=-self.window_bits)
        body = self.compressor.compress(message) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert body.endswith(b"\x00\x00\xff\xff")
        return body[:-4]

    def frames(self, opcode: int, message: bytes, fragment: int | None = None) -> list[bytes]:
        body = self.compress(message)
        if fragment is None or len(body) <= fragment:
            return [frame_bytes(opcode, body, rsv=0x40)]
        parts = [body[i : i + fragment] for i in range(0, len(body), fragment)]
        frames = [frame_bytes(opcode, parts[0], fin=False, rsv=0x40)]
        return frames + [cont(part, fin=i == len(parts) - 1) for i, part in enumerate(parts) if i]


class InflateServer:
    """How the server reads the client's compressed messages."""

    def __init__(self, window_bits: int, no_context_takeover: bool) -> None:
        self.window_bits = window_bits
        self.no_context_takeover = no_context_takeover
        self.decompressor = zlib.decompressobj(wbits=-window_bits)

    def inflate(self, sent: Sent) -> bytes:
        if not sent.rsv1:
            return sent.payload
        if self.no_context_takeover:
            self.decompressor = zlib.decompressobj(wbits=-self.window_bits)
        return self.decompressor.decompress(sent.payload + b"\x00\x00\xff\xff")


def payloads(kind: str, size: int, count: int) -> list[bytes]:
    rng = random.Random(size * 31 + count)
    if kind == "json":
        base = b'{"id": %d, "name": "sensor", "values": [1.5, 2.25, 3.125], "ok": true}'
        return [
            b"".join(base % (i + j) for j in range(size // 60 + 1))[:size] for i in range(count)
        ]
    if kind == "lorem":
        words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", b"consectetur", b"adipiscing"]
        return [
            b" ".join(rng.choice(words) for _ in range(size // 4 + 1))[:size] for _ in range(count)
        ]
    if kind == "utf8":
        chars = "κόσμε€𝄞 abc"
        out = []
        for _ in range(count):
            value = "".join(rng.choice(chars) for _ in range(size)).encode()[:size]
            out.append(value.decode(errors="ignore").encode())
        return out
    if kind == "random":
        return [rng.randbytes(size) for _ in range(count)]
    return [bytes(byte & 3 for byte in rng.randbytes(size)) for _ in range(count)]  # "sparse"


COMPRESSION_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
GROUPS = [("12_1", "json", TEXT), ("12_2", "lorem", TEXT), ("12_3", "utf8", TEXT)]
GROUPS += [("12_4", "sparse", BINARY), ("12_5", "random", BINARY)]
COMPRESSION_CASES = [
    (f"case_{group}_{index}", kind, opcode, size, fragment)
    for group, kind, opcode in GROUPS
    for index, (size, fragment) in enumerate(
        [(size, None) for size in COMPRESSION_SIZES]
        + [(size, 256) for size in COMPRESSION_SIZES[2:]],
        start=1,
    )
]


@pytest.mark.parametrize(
    ("kind", "opcode", "size", "fragment"),
    [case[1:] for case in COMPRESSION_CASES],
    ids=[case[0] for case in COMPRESSION_CASES],
)
def test_case_12_compressed_payloads(
    kind: str, opcode: int, size: int, fragment: int | None
) -> None:
    messages = payloads(kind, size, 5)
    server = DeflateServer(15, False)
    frames = [f for message in messages for f in server.frames(opcode, message, fragment)]
    run = echo(chops(8192, *frames, close()), extensions=[PerMessageDeflate(False, False, 15, 15)])
    assert_clean_close(run)
    reader = InflateServer(15, False)
    data_frames = [s for s in run.sent if s.opcode != CLOSE]
    assert [s.opcode for s in data_frames] == [opcode] * len(messages)
    assert all(s.rsv1 for s in data_frames), "the client compresses its echoes"
    assert [reader.inflate(s) for s in data_frames] == messages


def negotiate(params: list[tuple[str, str | None]], **offer: object) -> PerMessageDeflate:
    factory = ClientPerMessageDeflateFactory(**offer)  # type: ignore[arg-type]
    extension = factory.process_response_params(params, [])
    assert isinstance(extension, PerMessageDeflate)
    return extension


def round_trip(
    extension: PerMessageDeflate,
    server_bits: int,
    server_nct: bool,
    client_bits: int,
    client_nct: bool,
) -> None:
    # Messages that share content, so that context takeover matters.
    shared = b"The quick brown fox jumps over the lazy dog. " * 20
    messages = [shared + str(i).encode() * 50 for i in range(8)] + [b"", shared]
    server = DeflateServer(server_bits, server_nct)
    frames = [f for message in messages for f in server.frames(BINARY, message, 100)]
    run = echo(octetwise(*frames[:3]) + whole(*frames[3:], close()), extensions=[extension])
    assert_clean_close(run)
    # The server inflates with the window the client promised to stay within,
    # and a fresh context per message when client_no_context_takeover applies.
    reader = InflateServer(client_bits, client_nct)
    data_frames = [s for s in run.sent if s.opcode == BINARY]
    assert [reader.inflate(s) for s in data_frames] == messages
    if client_bits >= 9:
        assert all(s.rsv1 for s in data_frames if s.payload)
        if not client_nct:  # context takeover makes the repeat cheaper
            assert len(data_frames[-1].payload) < len(data_frames[0].payload)
    else:  # zlib cannot honour an 8-bit window: the client does not compress
        assert not any(s.rsv1 for s in data_frames)


BITS = list(range(8, 16))
TAKEOVER = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize(("server_nct", "client_nct"), TAKEOVER, ids=["ctx", "snct", "cnct", "nct"])
@pytest.mark.parametrize("bits", BITS, ids=[f"case_13_server_window_{b}" for b in BITS])
def test_case_13_server_window_bits(bits: int, server_nct: bool, client_nct: bool) -> None:
    params: list[tuple[str, str | None]] = [("server_max_window_bits", str(bits))]
    if server_nct:
        params.append(("server_no_context_takeover", None))
    if client_nct:
        params.append(("client_no_context_takeover", None))
    extension = negotiate(
        params,
        server_max_window_bits=bits,
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
    )
    round_trip(extension, bits, server_nct, 15, client_nct)


@pytest.mark.parametrize(("server_nct", "client_nct"), TAKEOVER, ids=["ctx", "snct", "cnct", "nct"])
@pytest.mark.parametrize("bits", BITS, ids=[f"case_13_client_window_{b}" for b in BITS])
def test_case_13_client_window_bits(bits: int, server_nct: bool, client_nct: bool) -> None:
    params: list[tuple[str, str | None]] = [("client_max_window_bits", str(bits))]
    if server_nct:
        params.append(("server_no_context_takeover", None))
    if client_nct:
        params.append(("client_no_context_takeover", None))
    extension = negotiate(params, client_max_window_bits=True)
    assert extension.local_max_window_bits == bits
    round_trip(extension, 15, server_nct, bits, client_nct)


def test_case_13_1_default_offer_accepted_without_parameters() -> None:
    round_trip(negotiate([]), 15, False, 15, False)


def test_case_12_uncompressed_message_on_a_compressed_connection() -> None:
    server = DeflateServer(15, False)
    frames = [text(b"plain"), *server.frames(TEXT, b"packed"), text(b"plain again")]
    protocol = ClientProtocol(extensions=[PerMessageDeflate(False, False, 15, 15)])
    protocol.receive_data(b"".join(frames))
    events = protocol.events_received()
    assert [event.data for event in events if isinstance(event, Fragment)] == [
        "plain",
        "packed",
        "plain again",
    ]


def test_case_12_decompression_bomb_fails_with_1009() -> None:
    server = DeflateServer(15, False)
    frames = server.frames(BINARY, b"\x00" * (64 * 2**20), fragment=4096)
    run = echo(
        chops(4096, *frames), max_size=2**20, extensions=[PerMessageDeflate(False, False, 15, 15)]
    )
    assert run.echoes == []
    assert_failed(run, 1009)
