"""Conformance cases, organised like the Autobahn TestSuite's categories and
written from RFC 6455 and RFC 7692, run through the real connection.

Each case plays the server on one end of a socket pair
(:class:`~tests.peers.paired_server.PairedServer`): it answers the opening
handshake by hand, permessage-deflate parameters included for the RFC 7692
categories, and writes the case's bytes whole, frame by frame, octet by octet
or in chops, pausing where a case waits for the client's answer. The other end
goes to ``requests_ws.connect(..., sock=)``, and an echo application plays
Autobahn's role: a thread that sends back every message ``recv()`` returns,
until the connection closes. The case then checks the frames the client wrote,
unmasked, in order, its close code, and how the application saw the end.
"""

from __future__ import annotations

import os
import random
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from requests_ws import (
    ClientConnection,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)
from requests_ws.extensions import ClientPerMessageDeflateFactory, PerMessageDeflate
from requests_ws.frames import OP_BINARY, OP_CONT, OP_TEXT
from requests_ws.protocol import State

from .peers.paired_server import AwaitFrames, Call, PairedServer, Piece
from .peers.raw_peer import frame_bytes
from .test_frames import split_client_frames

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
# Bounds every wait of a case; the client's own close_timeout is longer, so
# a case that only ends when the client gives up waiting fails.
CASE_TIMEOUT = 10.0
CLIENT_CLOSE_TIMEOUT = 30.0


@dataclass
class Sent:
    """A frame the client sent: data messages are joined, as (opcode, payload)."""

    opcode: int
    payload: bytes
    rsv1: bool = False


@dataclass
class Run:
    """What one case saw: the client's frames and how its application ended."""

    sent: list[Sent]
    raw: bytes
    connection: ClientConnection
    request: bytes
    # What ended the application: the ConnectionClosed its recv() raised.
    closed: ConnectionClosed | None = None
    app_error: BaseException | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def echoes(self) -> list[tuple[int, bytes]]:
        return [(s.opcode, s.payload) for s in self.sent if s.opcode in (TEXT, BINARY)]

    @property
    def pongs(self) -> list[bytes]:
        return [s.payload for s in self.sent if s.opcode == PONG]

    @property
    def close_payload(self) -> bytes | None:
        closes = [s for s in self.sent if s.opcode == CLOSE]
        assert len(closes) <= 1, "the client sent more than one close frame"
        if not closes:
            return None
        assert self.sent[-1].opcode == CLOSE, "the client sent a frame after its close frame"
        return closes[0].payload

    @property
    def close_code(self) -> int | None:
        payload = self.close_payload
        if payload is None:
            return None
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
    assert message is None, "the client left a fragmented message unfinished"
    return frames


App = Callable[[ClientConnection], None]


def echo_app(ws: ClientConnection) -> None:
    """Autobahn's echo client: every message goes back as it came."""
    while True:
        ws.send(ws.recv(timeout=CASE_TIMEOUT))


def echo(
    pieces: Sequence[Piece],
    *,
    max_size: int | None = 2**24,
    deflate: str | None = None,
    offer: ClientPerMessageDeflateFactory | None = None,
    with_handshake: bytes = b"",
    app: App = echo_app,
    close_timeout: float = CLIENT_CLOSE_TIMEOUT,
) -> Run:
    """Run ``app`` (the echo application) over a real connection while the
    server writes ``pieces``.

    ``deflate`` is the server's Sec-WebSocket-Extensions answer (then the
    client offers ``offer``, by default the default offer); ``with_handshake``
    goes out in the same write as the 101 response.
    """
    fds_before = open_fds()
    server = PairedServer(extensions=deflate, timeout=CASE_TIMEOUT)
    try:
        ws = server.connect(
            with_handshake,
            compression="deflate" if deflate is not None else None,
            extensions=None if offer is None else [offer],
            max_size=max_size,
            ping_interval=None,
            close_timeout=close_timeout,
        )
        try:
            run = Run([], b"", ws, server.request)
            application = threading.Thread(
                target=_run_app, args=(app, ws, run), name="test-echo-app"
            )
            application.start()
            raw = server.play(pieces)
            application.join(CASE_TIMEOUT)
            assert not application.is_alive(), "the application is still running"
        finally:
            ws.close()
    finally:
        server.close()
    background = f"requests_ws-{ws.id.hex[:8]}"
    assert not any(t.name == background for t in threading.enumerate()), "thread left running"
    assert open_fds() <= fds_before, "file descriptors left open"
    run.raw = raw
    run.sent = client_frames(raw)
    run.problems = server.problems
    assert not run.problems, run.problems
    assert run.app_error is None, repr(run.app_error)
    return run


def open_fds() -> int:
    """How many file descriptors this process holds (Linux; 0 elsewhere)."""
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def _run_app(app: App, ws: ClientConnection, run: Run) -> None:
    try:
        app(ws)
    except ConnectionClosed as exc:
        run.closed = exc
    except BaseException as exc:  # judged by echo()
        run.app_error = exc


# Deliveries: how the server's bytes reach the client.


def whole(*frames: bytes) -> list[Piece]:
    return [b"".join(frames)]


def framewise(*frames: bytes) -> list[Piece]:
    return list(frames)


def octetwise(*frames: bytes) -> list[Piece]:
    data = b"".join(frames)
    return [data[i : i + 1] for i in range(len(data))]


def chops(size: int, *frames: bytes) -> list[Piece]:
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


def assert_clean_close(run: Run, code: int = 1000, reason: bytes = b"") -> None:
    """The server closed with ``code``/``reason`` and the client repeated them."""
    assert run.close_code == code, run.sent
    expected = b"" if code == 1005 else struct.pack("!H", code) + reason
    assert run.close_payload == expected
    closed = run.closed
    assert closed is not None, "the application did not see the connection close"
    assert isinstance(closed, ConnectionClosedOK) == (code in (1000, 1001)), repr(closed)
    assert closed.rcvd is not None and closed.rcvd.code == code, repr(closed)
    assert closed.rcvd_then_sent is True
    assert run.connection.close_code == code
    assert run.connection.state is State.CLOSED


def assert_failed(run: Run, code: int) -> None:
    """The client failed the connection with ``code`` (no close from the server)."""
    assert run.close_code == code, run.sent
    closed = run.closed
    assert isinstance(closed, ConnectionClosedError), repr(closed)
    assert closed.rcvd is None, repr(closed)
    assert closed.sent is not None and closed.sent.code == code, repr(closed)
    payload = run.close_payload
    assert payload is not None and len(payload) - 2 <= 123
    payload[2:].decode()  # the reason is UTF-8
    assert run.connection.close_code == 1006
    assert run.connection.state is State.CLOSED


def ids(prefix: str, count: int, start: int = 1) -> list[str]:
    return [f"case_{prefix}_{i}" for i in range(start, start + count)]


# -- 1 Framing ----------------------------------------------------------------------

FRAMING_SIZES = [0, 125, 126, 127, 128, 65535, 65536]


@pytest.mark.parametrize("size", [*FRAMING_SIZES, 65536], ids=ids("1_1", 8))
def test_case_1_1_text_messages(size: int, request: pytest.FixtureRequest) -> None:
    payload = b"*" * size
    chopped = request.node.callspec.id == "case_1_1_8"  # in chops of 997 octets
    frames = (text(payload), close())
    # Whole, the case arrives in the same write as the 101 response: the
    # handshake's leftover bytes are the first the connection parses.
    run = echo(chops(997, *frames)) if chopped else echo([], with_handshake=b"".join(frames))
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


FRAMING_ERRORS = [
    ("masked_server_frame", bytes([0x81, 0x82]) + b"abcd" + b"xy"),  # RFC 6455 5.1
    ("16_bit_length_under_126", bytes([0x81, 126, 0, 5]) + b"hello"),  # 5.2: minimal length
    ("64_bit_length_under_65536", bytes([0x82, 127]) + (5).to_bytes(8, "big") + b"hello"),
    ("64_bit_length_top_bit", bytes([0x82, 127, 0x80]) + bytes(7)),
]


@pytest.mark.parametrize(
    "frame", [case[1] for case in FRAMING_ERRORS], ids=[case[0] for case in FRAMING_ERRORS]
)
@pytest.mark.parametrize("deliver", [whole, octetwise], ids=["whole", "octetwise"])
def test_case_1_framing_errors_fail_with_1002(
    frame: bytes, deliver: Callable[..., list[Piece]]
) -> None:
    run = echo(deliver(text(b"before"), frame, ping(b"after")))
    assert run.echoes == [(TEXT, b"before")]
    assert run.pongs == []
    assert_failed(run, 1002)


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
]


@pytest.mark.parametrize(
    ("pieces", "pongs"), [case[1:] for case in PING_CASES], ids=[case[0] for case in PING_CASES]
)
def test_case_2_ping_pong(pieces: list[Piece], pongs: list[bytes]) -> None:
    run = echo(pieces)
    assert run.pongs == pongs
    assert [s.opcode for s in run.sent] == [PONG] * len(pongs) + [CLOSE]
    assert_clean_close(run)


TEN_PINGS = [ping(f"payload-{i}".encode()) for i in range(10)]


@pytest.mark.parametrize("deliver", [whole, octetwise], ids=["case_2_10", "case_2_11"])
def test_case_2_10_and_2_11_ten_pings(deliver: Callable[..., list[Piece]]) -> None:
    """Ten pings at once: only the latest ping needs its pong (RFC 6455
    5.5.3), so pings that arrive together may share one; the pongs answer
    pings in order and the last ping is always answered."""
    run = echo(deliver(*TEN_PINGS, close()))
    payloads = [f"payload-{i}".encode() for i in range(10)]
    assert run.pongs, "no ping was answered"
    assert run.pongs[-1] == payloads[-1]
    positions = [payloads.index(payload) for payload in run.pongs]
    assert positions == sorted(set(positions)), run.pongs
    assert [s.opcode for s in run.sent] == [PONG] * len(run.pongs) + [CLOSE]
    assert_clean_close(run)


def test_case_2_10_ten_pings_one_at_a_time() -> None:
    """Each ping written only once the previous one was answered: all ten pongs."""
    pieces: list[Piece] = []
    for index, frame in enumerate(TEN_PINGS):
        pieces += [frame, AwaitFrames(index + 1)]
    run = echo([*pieces, close()])
    assert run.pongs == [f"payload-{i}".encode() for i in range(10)]
    assert_clean_close(run)


@pytest.mark.parametrize("size", [126, 127, 1000, 65536], ids=ids("2_5", 4))
def test_case_2_5_ping_payload_too_long(size: int) -> None:
    run = echo(whole(ping(b"\xfe" * size), close()))
    assert run.pongs == []
    assert_failed(run, 1002)


def test_case_2_pong_frame_is_byte_exact() -> None:
    """The answer to a ping: FIN + PONG, masked, the ping's payload echoed."""
    payloads = [b"", b"Hello, world!", BINARY_PING, b"\xfe" * 125]
    pieces: list[Piece] = []
    for index, payload in enumerate(payloads):
        pieces += [ping(payload), AwaitFrames(index + 1)]
    run = echo([*pieces, close()])
    frames = split_client_frames(run.raw)
    assert len(frames) == len(payloads) + 1
    data = run.raw
    for payload, (header, unmasked) in zip(payloads, frames, strict=False):
        assert header == bytes([0x8A, 0x80 | len(payload)])
        assert data[:2] == header and len(data) >= 6 + len(payload)
        data = data[6 + len(payload) :]
        assert unmasked == payload
    assert_clean_close(run)


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
    # The server writes the rest of the message only once the pong came.
    run = echo([*first, AwaitFrames(1), *second, AwaitFrames(2), *last])
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
    assert_clean_close(run)


def test_case_6_1_2_empty_fragments() -> None:
    run = echo(whole(text(b"", fin=False), cont(b"", fin=False), cont(b""), close()))
    assert run.echoes == [(TEXT, b"")]
    assert_clean_close(run)


def test_case_6_1_3_first_and_last_fragments_empty() -> None:
    frames = (text(b"", fin=False), cont(b"middle frame payload", fin=False), cont(b""))
    run = echo(whole(*frames, close()))
    assert run.echoes == [(TEXT, b"middle frame payload")]
    assert_clean_close(run)


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
    """Three fragments; the second is invalid; the third never matters: the
    server writes only two and the client fails with them."""
    first = text(FAIL_FAST_VALID, fin=False)
    second = cont(FAIL_FAST_INVALID, fin=False)
    run = echo([first, second])
    assert [s.opcode for s in run.sent] == [CLOSE]
    assert_failed(run, 1007)


def test_case_6_4_2_fail_fast_inside_the_first_fragment() -> None:
    """The first fragment ends with the first octet of the invalid sequence:
    the failure comes with the second fragment, the third is not needed."""
    first = text(FAIL_FAST_VALID + FAIL_FAST_INVALID[:1], fin=False)
    second = cont(FAIL_FAST_INVALID[1:2], fin=False)
    # F4 alone may still start a valid code point: the ping after the first
    # fragment is answered, so the client has not failed yet.
    run = echo([first, ping(b"alive"), AwaitFrames(1), second])
    assert [(s.opcode, s.payload) for s in run.sent[:1]] == [(PONG, b"alive")]
    assert [s.opcode for s in run.sent] == [PONG, CLOSE]
    assert_failed(run, 1007)


def accepted_prefix(prefix: bytes) -> bytes:
    """``prefix`` completed into valid UTF-8 (it must be a valid prefix)."""
    for tail in [b"", *COMPLETIONS]:
        if is_utf8(prefix + tail):
            return prefix + tail
    raise AssertionError(f"no valid UTF-8 starts with {prefix!r}")


def test_case_6_4_3_fail_fast_inside_one_frame() -> None:
    """One frame sent in chops: the failure comes with the second chop,
    long before the frame is complete (the rest is never written)."""
    frame = text(FAIL_FAST_VALID + FAIL_FAST_INVALID + FAIL_FAST_TAIL)
    cut = 2 + len(FAIL_FAST_VALID)
    first, second = frame[:cut], frame[cut : cut + len(FAIL_FAST_INVALID)]
    run = echo([first, second])
    assert run.echoes == []
    assert_failed(run, 1007)


def test_case_6_4_4_fail_fast_at_the_first_invalid_octet() -> None:
    """Same frame, cut inside the invalid sequence: F4 is still a possible
    start, F4 90 is not, so the failure comes with the octet 90 (nothing
    after it is written). First the same octets up to F4, completed into a
    valid message and written octet by octet, are echoed: reads that end
    after F4 do not fail the connection."""
    frame = text(FAIL_FAST_VALID + FAIL_FAST_INVALID + FAIL_FAST_TAIL)
    cut = 2 + len(FAIL_FAST_VALID) + 1
    valid = accepted_prefix(frame[2:cut])
    run = echo([*octetwise(text(valid)), AwaitFrames(1), *octetwise(frame[: cut + 1])])
    assert run.echoes == [(TEXT, valid)]
    assert_failed(run, 1007)


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
    elif valid:
        payload += b"padding"
        pieces = octetwise(text(payload), close())
    else:
        # Fail fast: the server writes the frame octet by octet up to the
        # very octet that no valid UTF-8 could continue, and no further; the
        # client must fail with what it has. Before that, the octets up to
        # there, completed into a valid message, are echoed: the client does
        # not fail any earlier.
        padded = payload + b"padding"
        frame = text(padded)
        detected = 2 + earliest_detection(padded)
        assert detected - 2 < len(padded)
        valid_part = accepted_prefix(frame[2 : detected - 1])
        run = echo([*octetwise(text(valid_part)), AwaitFrames(1), *octetwise(frame[:detected])])
        assert run.echoes == [(TEXT, valid_part)]
        assert_failed(run, 1007)
        return
    run = echo(pieces)
    if valid:
        assert run.echoes == [(TEXT, payload)]
        assert_clean_close(run)
        return
    assert run.echoes == []
    assert_failed(run, 1007)


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
    assert run.connection.protocol.close_rcvd_then_sent is True
    assert_clean_close(run)


def test_case_7_1_2_second_close_is_ignored() -> None:
    run = echo(whole(close(), close()))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]
    assert_clean_close(run)


def test_case_7_1_3_ping_after_close_is_ignored() -> None:
    run = echo(whole(close(), ping(b"Hello World!")))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]
    assert_clean_close(run)


def test_case_7_1_4_text_after_close_is_ignored() -> None:
    run = echo(whole(close(), text(b"Hello World!")))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]
    assert_clean_close(run)


def test_case_7_1_5_close_inside_a_fragmented_message() -> None:
    run = echo(whole(text(b"fragment1", fin=False), close(), cont(b"fragment2")))
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8")]
    assert_clean_close(run)


def test_case_7_1_6_large_message_then_close_then_ping() -> None:
    payload = b"BAsd7&jh23" * 26214  # 256 KiB, give or take
    run = echo(chops(65536, text(payload), close(), ping(b"Hello World!")))
    assert [s.opcode for s in run.sent] == [TEXT, CLOSE]
    assert run.echoes == [(TEXT, payload)]
    assert_clean_close(run)


def test_case_7_client_initiated_close() -> None:
    """The application closes first: one close frame, then the server's data
    and close are read (not answered), and the handshake completes."""
    outcome: list[object] = []

    def close_first(ws: ClientConnection) -> None:
        ws.close(1000, "bye")
        outcome.append(ws.protocol.close_rcvd_then_sent)

    run = echo([AwaitFrames(1), text(b"still arriving"), close(1000)], app=close_first)
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8bye")]
    assert outcome == [False]
    assert run.connection.close_code == 1000
    assert run.connection.state is State.CLOSED


class Gate:
    """Holds the application back until the server's script opens it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def open(self) -> None:
        self._event.set()

    def wait(self) -> None:
        assert self._event.wait(CASE_TIMEOUT), "the server never let the application go on"


def test_case_2_ping_answered_while_the_application_is_away() -> None:
    """Pings are answered while nobody calls recv()."""
    gate = Gate()

    def away_then_echo(ws: ClientConnection) -> None:
        gate.wait()
        echo_app(ws)

    pieces: list[Piece] = [
        ping(b"anyone?"),
        AwaitFrames(1),
        Call(gate.open),
        text(b"back"),
        close(),
    ]
    run = echo(pieces, app=away_then_echo)
    assert [(s.opcode, s.payload) for s in run.sent] == [
        (PONG, b"anyone?"),
        (TEXT, b"back"),
        (CLOSE, b"\x03\xe8"),
    ]
    assert_clean_close(run)


def test_case_7_close_answered_at_once_while_the_application_is_away() -> None:
    """Nothing queued before the server's close: it is answered at once,
    repeating code and reason, though the application is not in recv()."""
    gate = Gate()
    seen: list[str] = []

    def away_then_read(ws: ClientConnection) -> None:
        gate.wait()
        seen.append("reading")
        ws.recv(timeout=CASE_TIMEOUT)

    pieces: list[Piece] = [close(1001, b"going away"), AwaitFrames(1), Call(gate.open)]
    run = echo(pieces, app=away_then_read)
    assert [s.opcode for s in run.sent] == [CLOSE]
    assert seen == ["reading"]
    assert_clean_close(run, 1001, b"going away")


def test_case_7_close_waits_for_the_messages_before_it() -> None:
    """A message queued before the server's close: the application takes it
    and its echo goes out before the answer to the close."""
    gate = Gate()

    def away_then_echo(ws: ClientConnection) -> None:
        gate.wait()
        echo_app(ws)

    run = echo([text(b"first"), close(1000, b"done"), Call(gate.open)], app=away_then_echo)
    assert [(s.opcode, s.payload) for s in run.sent] == [
        (TEXT, b"first"),
        (CLOSE, b"\x03\xe8done"),
    ]
    assert_clean_close(run, 1000, b"done")


def test_case_7_close_answered_after_close_timeout_when_the_application_never_reads() -> None:
    """The application never reads: the close is answered after
    close_timeout, and the message before it is still delivered afterwards."""
    gate = Gate()
    received: list[str | bytes] = []

    def away_then_drain(ws: ClientConnection) -> None:
        gate.wait()
        while True:
            received.append(ws.recv(timeout=CASE_TIMEOUT))

    pieces: list[Piece] = [text(b"unread"), close(1000, b"bye"), AwaitFrames(1), Call(gate.open)]
    run = echo(pieces, app=away_then_drain, close_timeout=0.2)
    assert [(s.opcode, s.payload) for s in run.sent] == [(CLOSE, b"\x03\xe8bye")]
    assert received == ["unread"]
    assert_clean_close(run, 1000, b"bye")


def test_case_7_violation_waits_for_the_messages_before_it() -> None:
    """A protocol violation after two messages: the application takes both
    and both echoes go out before the 1002."""
    gate = Gate()

    def away_then_echo(ws: ClientConnection) -> None:
        gate.wait()
        echo_app(ws)

    pieces: list[Piece] = [text(b"one"), binary(b"two"), frame_bytes(3, b""), Call(gate.open)]
    run = echo(pieces, app=away_then_echo)
    assert [(s.opcode, s.payload) for s in run.sent[:2]] == [(TEXT, b"one"), (BINARY, b"two")]
    assert_failed(run, 1002)


CLOSE_STRUCTURE = [
    ("case_7_3_1", close(None), 1005),  # an empty close is answered with an empty close
    ("case_7_3_2", frame_bytes(CLOSE, b"\x03"), 1002),
    ("case_7_3_3", close(1000), 1000),
    ("case_7_3_4", close(1000, b"Hello World!"), 1000),
    ("case_7_3_5", close(1000, b"*" * 123), 1000),
    ("case_7_3_5_utf8", close(1000, "é".encode() * 61 + b"x"), 1000),  # 123 octets
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
    if code in (1000, 1005):  # answered, repeating the server's code and reason
        assert_clean_close(run, code, data[4:])
    else:
        assert_failed(run, code)


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]


@pytest.mark.parametrize("code", VALID_CODES, ids=ids("7_7", len(VALID_CODES)))
def test_case_7_7_valid_codes_are_echoed(code: int) -> None:
    run = echo(whole(close(code, b"Hello World!")))
    assert [s.opcode for s in run.sent] == [CLOSE]
    assert_clean_close(run, code, b"Hello World!")


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
    assert_clean_close(run)


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
    assert_clean_close(run)


@pytest.mark.parametrize("size", FRAGMENT_SIZES, ids=ids("9_4", len(FRAGMENT_SIZES)))
def test_case_9_4_fragmented_binary(size: int) -> None:
    payload = b"\xfe" * 2**22
    run = echo(chops(2**16, *fragmented(BINARY, payload, size), close()), max_size=None)
    assert run.echoes == [(BINARY, payload)]
    assert_clean_close(run)


CHOPS = [64, 128, 256, 512, 1024, 2048]


@pytest.mark.parametrize("chop", CHOPS, ids=ids("9_5", len(CHOPS)))
def test_case_9_5_text_in_chops(chop: int) -> None:
    payload = "€𝄞é".encode() * (2**20 // 9)
    run = echo(chops(chop, text(payload), close()), max_size=None)
    assert run.echoes == [(TEXT, payload)]
    assert_clean_close(run)


@pytest.mark.parametrize("chop", CHOPS, ids=ids("9_6", len(CHOPS)))
def test_case_9_6_binary_in_chops(chop: int) -> None:
    payload = b"\xfe" * 2**20
    run = echo(chops(chop, binary(payload), close()), max_size=None)
    assert run.echoes == [(BINARY, payload)]
    assert_clean_close(run)


MANY = [0, 16, 64, 256, 1024, 4096]


@pytest.mark.parametrize("size", MANY, ids=ids("9_7", len(MANY)))
def test_case_9_7_many_text_messages(size: int) -> None:
    frames = [text(b"*" * size)] * 1000 + [close()]
    run = echo(chops(2**16, *frames))
    assert run.echoes == [(TEXT, b"*" * size)] * 1000
    assert_clean_close(run)


@pytest.mark.parametrize("size", MANY, ids=ids("9_8", len(MANY)))
def test_case_9_8_many_binary_messages(size: int) -> None:
    frames = [binary(b"\xfe" * size)] * 1000 + [close()]
    run = echo(chops(2**16, *frames))
    assert run.echoes == [(BINARY, b"\xfe" * size)] * 1000
    assert_clean_close(run)


MAX_SIZE_BOUNDARY = [
    ("plain", [binary(b"a" * 1000)], [binary(b"a" * 1001)]),
    (
        "fragmented",
        [binary(b"a" * 500, fin=False), cont(b"a" * 500)],
        [binary(b"a" * 500, fin=False), cont(b"a" * 501)],
    ),
    ("text_counts_octets", [text("é" * 500)], [text("é" * 500 + "e")]),
]


@pytest.mark.parametrize(
    ("at_limit", "over_limit"),
    [case[1:] for case in MAX_SIZE_BOUNDARY],
    ids=[case[0] for case in MAX_SIZE_BOUNDARY],
)
def test_case_9_max_size_boundary(at_limit: list[bytes], over_limit: list[bytes]) -> None:
    """A message of exactly max_size octets passes; one octet more fails."""
    run = echo(whole(*at_limit, *over_limit, close()), max_size=1000)
    assert len(run.echoes) == 1 and len(run.echoes[0][1]) == 1000
    assert_failed(run, 1009)


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
    run = echo(chops(8192, *frames, close()), deflate="permessage-deflate")
    assert_clean_close(run)
    assert negotiated(run) == (False, False, 15, 15)
    reader = InflateServer(15, False)
    data_frames = [s for s in run.sent if s.opcode != CLOSE]
    assert [s.opcode for s in data_frames] == [opcode] * len(messages)
    assert all(s.rsv1 for s in data_frames), "the client compresses its echoes"
    assert [reader.inflate(s) for s in data_frames] == messages


def negotiated(run: Run) -> tuple[bool, bool, int, int]:
    """The permessage-deflate codec the connection runs with, as
    (remote_no_context_takeover, local_no_context_takeover,
    remote_max_window_bits, local_max_window_bits)."""
    offers = [
        line for line in run.request.split(b"\r\n") if line.lower().startswith(b"sec-websocket-ext")
    ]
    assert offers and b"permessage-deflate" in offers[0], "the client offered no compression"
    (extension,) = run.connection.protocol.extensions
    assert isinstance(extension, PerMessageDeflate)
    return (
        extension.remote_no_context_takeover,
        extension.local_no_context_takeover,
        extension.remote_max_window_bits,
        extension.local_max_window_bits,
    )


def answer(params: list[tuple[str, str | None]]) -> str:
    """The server's Sec-WebSocket-Extensions value accepting permessage-deflate."""
    parts = ["permessage-deflate"]
    parts += [name if value is None else f"{name}={value}" for name, value in params]
    return "; ".join(parts)


def round_trip(
    params: list[tuple[str, str | None]],
    offer: ClientPerMessageDeflateFactory | None,
    server_bits: int,
    server_nct: bool,
    client_bits: int,
    client_nct: bool,
) -> Run:
    """Negotiate ``params`` in the handshake, then echo compressed messages."""
    # Messages that share content, so that context takeover matters.
    shared = b"The quick brown fox jumps over the lazy dog. " * 20
    messages = [shared + str(i).encode() * 50 for i in range(8)] + [b"", shared]
    server = DeflateServer(server_bits, server_nct)
    frames = [f for message in messages for f in server.frames(BINARY, message, 100)]
    pieces = octetwise(*frames[:3]) + whole(*frames[3:], close())
    run = echo(pieces, deflate=answer(params), offer=offer)
    assert_clean_close(run)
    assert negotiated(run) == (server_nct, client_nct, server_bits, client_bits)
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
    return run


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
    offer = ClientPerMessageDeflateFactory(
        server_max_window_bits=bits,
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
    )
    round_trip(params, offer, bits, server_nct, 15, client_nct)


@pytest.mark.parametrize(("server_nct", "client_nct"), TAKEOVER, ids=["ctx", "snct", "cnct", "nct"])
@pytest.mark.parametrize("bits", BITS, ids=[f"case_13_client_window_{b}" for b in BITS])
def test_case_13_client_window_bits(bits: int, server_nct: bool, client_nct: bool) -> None:
    params: list[tuple[str, str | None]] = [("client_max_window_bits", str(bits))]
    if server_nct:
        params.append(("server_no_context_takeover", None))
    if client_nct:
        params.append(("client_no_context_takeover", None))
    offer = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    round_trip(params, offer, 15, server_nct, bits, client_nct)


def test_case_13_1_default_offer_accepted_without_parameters() -> None:
    round_trip([], None, 15, False, 15, False)


def test_case_12_uncompressed_message_on_a_compressed_connection() -> None:
    """RSV1 is per message: plain messages between compressed ones."""
    server = DeflateServer(15, False)
    frames = [text(b"plain"), *server.frames(TEXT, b"packed"), text(b"plain again"), close()]
    run = echo(whole(*frames), deflate="permessage-deflate")
    assert_clean_close(run)
    reader = InflateServer(15, False)
    assert [reader.inflate(s) for s in run.sent if s.opcode == TEXT] == [
        b"plain",
        b"packed",
        b"plain again",
    ]


def test_case_12_decompression_bomb_fails_with_1009() -> None:
    server = DeflateServer(15, False)
    frames = server.frames(BINARY, b"\x00" * (64 * 2**20), fragment=4096)
    run = echo(chops(4096, *frames), max_size=2**20, deflate="permessage-deflate")
    assert run.echoes == []
    assert_failed(run, 1009)


def test_case_12_max_size_counts_inflated_octets() -> None:
    """max_size applies after decompression: exactly at the limit passes,
    one octet more fails, however small the compressed frame."""
    server = DeflateServer(15, True)
    frames = [*server.frames(BINARY, b"a" * 1000), *server.frames(BINARY, b"a" * 1001)]
    run = echo(whole(*frames, close()), max_size=1000, deflate="permessage-deflate")
    assert [InflateServer(15, False).inflate(s) for s in run.sent if s.opcode == BINARY] == [
        b"a" * 1000
    ]
    assert_failed(run, 1009)


def compressed_frames(rsv_first: int, rsv_rest: int) -> list[bytes]:
    body = DeflateServer(15, True).compress(b"Hello, compressed world! " * 4)
    return [text(body[:5], fin=False, rsv=rsv_first), frame_bytes(0, body[5:], rsv=rsv_rest)]


COMPRESSION_ERRORS = [
    # RFC 7692 6.1: RSV1 is set on the first frame of a message only.
    ("rsv1_on_a_continuation_frame", compressed_frames(0x40, 0x40), 1002),
    ("rsv1_on_a_control_frame", [ping(b"x", rsv=0x40)], 1002),
    ("rsv2_not_negotiated", [text(b"x", rsv=0x20)], 1002),
    ("invalid_deflate_data", [frame_bytes(BINARY, b"\xff\xff\xff\xff", rsv=0x40)], 1002),
    (
        "invalid_utf8_once_inflated",
        DeflateServer(15, True).frames(TEXT, b"ok \xed\xa0\x80 surrogate"),
        1007,
    ),
]


@pytest.mark.parametrize(
    ("frames", "code"),
    [case[1:] for case in COMPRESSION_ERRORS],
    ids=[case[0] for case in COMPRESSION_ERRORS],
)
def test_case_12_compression_errors(frames: list[bytes], code: int) -> None:
    server = DeflateServer(15, True)
    pieces = whole(*server.frames(TEXT, b"before"), *frames, ping(b"after"), close())
    run = echo(pieces, deflate="permessage-deflate; server_no_context_takeover")
    assert [InflateServer(15, False).inflate(s) for s in run.sent if s.opcode == TEXT] == [
        b"before"
    ]
    assert run.pongs == []
    assert_failed(run, code)
