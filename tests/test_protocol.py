"""ClientProtocol: every input rule of RFC 6455 section 5, byte for byte, and
the sending side's rules."""

from __future__ import annotations

import random
import struct
import zlib

import pytest

import requests_ws.protocol as protocol_module
from requests_ws.exceptions import PayloadTooBig, ProtocolError
from requests_ws.extensions import PerMessageDeflate
from requests_ws.frames import OP_BINARY, OP_CONT, OP_PING, OP_TEXT, Close
from requests_ws.protocol import (
    ClientProtocol,
    CloseReceived,
    Event,
    Failure,
    Fragment,
    InvalidState,
    Ping,
    Pong,
    State,
    _reason_for,
)

from .peers.raw_peer import close_payload, frame_bytes
from .test_frames import split_client_frames, unmask


def feed(
    data: bytes,
    *,
    chunk: int | None = None,
    max_size: int | None = 2**20,
    extensions: list[PerMessageDeflate] | None = None,
) -> list[Event]:
    protocol = ClientProtocol(max_size=max_size, extensions=extensions or [])
    events: list[Event] = []
    if chunk is None:
        protocol.receive_data(data)
        events += protocol.events_received()
    else:
        for start in range(0, len(data), chunk):
            protocol.receive_data(data[start : start + chunk])
            events += protocol.events_received()
    return events


def only_failure(events: list[Event]) -> Failure:
    """The failure must be the last event, and the only one."""
    assert events, "expected a Failure, got no events"
    failure = events[-1]
    assert isinstance(failure, Failure), events
    assert sum(isinstance(event, Failure) for event in events) == 1
    assert failure.reason
    assert len(failure.reason.encode()) <= 123
    return failure


def state_of(protocol: ClientProtocol) -> State:
    """The state, read through a call so that mypy does not narrow it."""
    return protocol.state


def deflate(data: bytes, wbits: int = 15) -> bytes:
    """A whole message compressed as RFC 7692 7.2.1 says (tail removed)."""
    compressor = zlib.compressobj(wbits=-wbits)
    body = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    return body[:-4]


def pmd() -> PerMessageDeflate:
    return PerMessageDeflate(False, False, 15, 15)


def test_data_and_control_frames() -> None:
    events = feed(
        frame_bytes(0x1, b"text")
        + frame_bytes(0x2, b"\x00\x01")
        + frame_bytes(0x9, b"ping")
        + frame_bytes(0xA, b"pong")
        + frame_bytes(0x8, close_payload(1000, "bye"))
    )
    assert events == [
        Fragment("text", True, True, True),
        Fragment(b"\x00\x01", False, True, True),
        Ping(b"ping"),
        Pong(b"pong"),
        CloseReceived(Close(1000, "bye")),
    ]
    assert isinstance(events[0].data, str) and isinstance(events[1].data, bytes)  # type: ignore[union-attr]


def test_events_are_drained() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, b"a"))
    assert protocol.events_received() == [Fragment("a", True, True, True)]
    assert protocol.events_received() == []


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 100])
def test_any_split(chunk: int) -> None:
    data = (
        frame_bytes(0x1, "héllo wörld".encode())
        + frame_bytes(0x2, b"x" * 300)
        + frame_bytes(0x2, b"y" * 70000)
        + frame_bytes(0x9, b"")
    )
    assert feed(data, chunk=chunk) == [
        Fragment("héllo wörld", True, True, True),
        Fragment(b"x" * 300, False, True, True),
        Fragment(b"y" * 70000, False, True, True),
        Ping(b""),
    ]


def test_empty_reads_are_harmless() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(b"")
    protocol.receive_data(b"\x81")
    protocol.receive_data(b"")
    protocol.receive_data(b"\x01a")
    assert protocol.events_received() == [Fragment("a", True, True, True)]


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_like_input(kind: type) -> None:
    assert feed(kind(frame_bytes(0x2, b"abc"))) == [Fragment(b"abc", False, True, True)]


def test_control_frames_between_fragments() -> None:
    events = feed(
        frame_bytes(0x1, b"a", fin=False)
        + frame_bytes(0x9, b"p")
        + frame_bytes(0x0, b"b", fin=False)
        + frame_bytes(0xA, b"q")
        + frame_bytes(0x0, b"c")
    )
    assert events == [
        Fragment("a", True, True, False),
        Ping(b"p"),
        Fragment("b", True, False, False),
        Pong(b"q"),
        Fragment("c", True, False, True),
    ]


def test_binary_fragments() -> None:
    events = feed(
        frame_bytes(0x2, b"\x00", fin=False)
        + frame_bytes(0x0, b"", fin=False)
        + frame_bytes(0x0, b"\xff")
        + frame_bytes(0x1, b"next")
    )
    assert events == [
        Fragment(b"\x00", False, True, False),
        Fragment(b"", False, False, False),
        Fragment(b"\xff", False, False, True),
        Fragment("next", True, True, True),
    ]


def test_close_inside_fragmented_message_is_a_normal_close() -> None:
    events = feed(
        frame_bytes(0x2, b"a", fin=False)
        + frame_bytes(0x8, close_payload(1000))
        + frame_bytes(0x0, b"ignored")
    )
    assert events == [Fragment(b"a", False, True, False), CloseReceived(Close(1000, ""))]


def test_nothing_is_parsed_after_a_close_frame() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x8, b"") + frame_bytes(0x1, b"late") + b"\x83\x00")
    protocol.receive_data(frame_bytes(0x9, b"later"))
    assert protocol.events_received() == [CloseReceived(Close(1005, ""))]
    assert protocol.close_rcvd == Close(1005, "")
    assert protocol.failure is None


# -- input rules (RFC 6455 section 5) -----------------------------------------------

INPUT_RULES = [
    ("masked_text", b"\x81\x85abcd" + b"hello", 1002, "masked"),
    ("masked_ping", b"\x89\x80abcd", 1002, "masked"),
    ("rsv1", b"\xc1\x00", 1002, "reserved bits"),
    ("rsv2", b"\xa1\x00", 1002, "reserved bits"),
    ("rsv3", b"\x91\x00", 1002, "reserved bits"),
    ("rsv_all", b"\xf2\x00", 1002, "reserved bits"),
    ("rsv1_ping", b"\xc9\x00", 1002, "reserved bits"),
    ("rsv2_close", b"\xa8\x00", 1002, "reserved bits"),
    *[
        (f"opcode_{op:#x}", bytes([0x80 | op, 0]), 1002, f"reserved opcode {op:#x}")
        for op in range(3, 8)
    ],
    *[
        (f"opcode_{op:#x}", bytes([0x80 | op, 0]), 1002, f"reserved opcode {op:#x}")
        for op in range(0xB, 0x10)
    ],
    ("opcode_3_unfinished", b"\x03\x00", 1002, "reserved opcode 0x3"),
    ("fragmented_ping", b"\x09\x00", 1002, "fragmented a control frame"),
    ("fragmented_pong", b"\x0a\x01x", 1002, "fragmented a control frame"),
    ("fragmented_close", b"\x08\x02\x03\xe8", 1002, "fragmented a control frame"),
    ("ping_126", frame_bytes(0x9, b"x" * 126), 1002, "126-byte"),
    ("pong_126", frame_bytes(0xA, b"x" * 126), 1002, "126-byte"),
    ("close_126", frame_bytes(0x8, b"\x03\xe8" + b"x" * 124), 1002, "126-byte"),
    ("ping_64bit", b"\x89\x7f" + struct.pack("!Q", 70000), 1002, "70000-byte"),
    ("orphan_continuation", b"\x80\x00", 1002, "continuation frame with no fragmented"),
    ("orphan_continuation_unfinished", b"\x00\x01a", 1002, "continuation frame with no"),
    (
        "text_inside_message",
        frame_bytes(0x1, b"a", fin=False) + frame_bytes(0x1, b"b"),
        1002,
        "new message",
    ),
    (
        "binary_inside_message",
        frame_bytes(0x1, b"a", fin=False) + frame_bytes(0x2, b"b", fin=False),
        1002,
        "new message",
    ),
    ("close_1_byte", frame_bytes(0x8, b"\x03"), 1002, "too short"),
    ("close_1004", frame_bytes(0x8, struct.pack("!H", 1004)), 1002, "invalid close code 1004"),
    ("close_1005", frame_bytes(0x8, struct.pack("!H", 1005)), 1002, "invalid close code 1005"),
    ("close_1006", frame_bytes(0x8, struct.pack("!H", 1006)), 1002, "invalid close code 1006"),
    ("close_1015", frame_bytes(0x8, struct.pack("!H", 1015)), 1002, "invalid close code 1015"),
    ("close_999", frame_bytes(0x8, struct.pack("!H", 999)), 1002, "invalid close code 999"),
    ("close_2999", frame_bytes(0x8, struct.pack("!H", 2999)), 1002, "invalid close code 2999"),
    ("close_5000", frame_bytes(0x8, struct.pack("!H", 5000)), 1002, "invalid close code 5000"),
    ("close_bad_utf8", frame_bytes(0x8, b"\x03\xe8\xff"), 1007, "invalid UTF-8"),
    ("text_bad_utf8", frame_bytes(0x1, b"\xff"), 1007, "invalid UTF-8"),
    ("text_surrogate", frame_bytes(0x1, b"\xed\xa0\x80"), 1007, "invalid UTF-8"),
    ("text_overlong", frame_bytes(0x1, b"\xc0\xaf"), 1007, "invalid UTF-8"),
    ("text_truncated", frame_bytes(0x1, b"\xe2\x82"), 1007, "invalid UTF-8"),
    ("non_minimal_16", b"\x82\x7e\x00\x05hello", 1002, "16-bit length"),
    ("non_minimal_16_125", b"\x82\x7e\x00\x7d" + b"x" * 125, 1002, "16-bit length"),
    ("non_minimal_64", b"\x82\x7f" + struct.pack("!Q", 5) + b"hello", 1002, "64-bit length"),
    ("non_minimal_64_65535", b"\x82\x7f" + struct.pack("!Q", 65535), 1002, "64-bit length"),
    ("top_bit_64", b"\x82\x7f" + struct.pack("!Q", 1 << 63), 1002, "top bit"),
    ("too_big_16", b"\x82\x7e\xff\xff", 1009, "max_size"),
    ("too_big_64", b"\x82\x7f" + struct.pack("!Q", 2**40), 1009, "max_size"),
]


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [rule[1:] for rule in INPUT_RULES],
    ids=[rule[0] for rule in INPUT_RULES],
)
@pytest.mark.parametrize("chunk", [None, 1], ids=["whole", "bytewise"])
def test_input_rules(data: bytes, code: int, words: str, chunk: int | None) -> None:
    before = frame_bytes(0x2, b"before") + frame_bytes(0x9, b"p")
    after = frame_bytes(0x1, b"after") + frame_bytes(0x8, close_payload(1000))
    events = feed(before + data + after, chunk=chunk, max_size=1000)
    assert events[:2] == [Fragment(b"before", False, True, True), Ping(b"p")]
    failure = only_failure(events)
    assert len(events) == 3 or isinstance(events[2], Fragment)  # "new message": its first frame
    assert failure.code == code
    assert words in failure.reason, failure.reason
    error_type = {1002: ProtocolError, 1007: UnicodeDecodeError, 1009: PayloadTooBig}[code]
    assert isinstance(failure.error, error_type)


def test_failure_comes_after_earlier_events_and_stops_parsing() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, b"first") + b"\x83\x00" + frame_bytes(0x1, b"never"))
    protocol.receive_data(frame_bytes(0x1, b"never either"))
    events = protocol.events_received()
    assert events[0] == Fragment("first", True, True, True)
    assert isinstance(events[1], Failure)
    assert len(events) == 2
    assert protocol.failure is events[1]
    protocol.receive_data(b"\x83\x00")
    assert protocol.events_received() == []


def test_reserved_bits_are_checked_from_the_header() -> None:
    """No need to wait for the payload of a frame that breaks a header rule."""
    for header in [b"\xc2\x7e\x10\x00", b"\x83\x7e\x10\x00", b"\x80\x7e\x10\x00"]:
        failure = only_failure(feed(header))
        assert failure.code == 1002


def test_reserved_bits_with_deflate() -> None:
    """permessage-deflate defines RSV1 on the first frame of a data message only."""
    cases = [
        frame_bytes(0x1, b"a", rsv=0x20),  # RSV2
        frame_bytes(0x1, b"a", rsv=0x10),  # RSV3
        frame_bytes(0x1, deflate(b"a"), rsv=0x60),  # RSV1 + RSV2
        frame_bytes(0x9, b"", rsv=0x40),  # RSV1 on a control frame
        frame_bytes(0x1, b"a", fin=False) + frame_bytes(0x0, b"b", rsv=0x40),
        frame_bytes(0x1, deflate(b"a"), fin=False, rsv=0x40) + frame_bytes(0x0, b"", rsv=0x40),
    ]
    for data in cases:
        failure = only_failure(feed(data, extensions=[pmd()]))
        assert failure.code == 1002, data
        assert "reserved bit" in failure.reason or "RSV1" in failure.reason


def test_invalid_compressed_data_is_a_protocol_error() -> None:
    failure = only_failure(
        feed(frame_bytes(0x2, b"\xff\xff\xff\xff", rsv=0x40), extensions=[pmd()])
    )
    assert failure.code == 1002
    assert "compressed" in failure.reason


def test_reason_is_bounded_and_readable() -> None:
    reason = _reason_for(ProtocolError("é" * 200))
    assert len(reason.encode()) <= 123
    assert reason.endswith("...")
    reason.encode().decode()  # no cut character
    assert _reason_for(ProtocolError("short")) == "short"
    error = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    assert _reason_for(error) == "invalid UTF-8 at byte 0 of the data read"


# -- UTF-8 -----------------------------------------------------------------------------


def test_utf8_fails_fast_in_the_frame_that_carries_it() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, b"valid", fin=False))
    assert protocol.events_received() == [Fragment("valid", True, True, False)]
    protocol.receive_data(frame_bytes(0x0, b"\xed\xa0\x80", fin=False))  # a surrogate
    failure = only_failure(protocol.events_received())
    assert failure.code == 1007
    assert isinstance(failure.error, UnicodeDecodeError)


def test_utf8_fails_fast_inside_a_frame_arriving_in_pieces() -> None:
    payload = b"a" * 1000 + b"\xc0\xaf" + b"b" * 1000
    data = frame_bytes(0x1, payload)
    protocol = ClientProtocol(max_size=None)
    protocol.receive_data(data[:500])
    assert protocol.events_received() == []
    protocol.receive_data(data[500:1100])  # the invalid bytes, long before the frame ends
    failure = only_failure(protocol.events_received())
    assert failure.code == 1007


def test_utf8_fails_fast_inside_a_continuation_frame_arriving_in_pieces() -> None:
    data = frame_bytes(0x0, b"x" * 50 + b"\xff" + b"y" * 50)
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, "κό".encode(), fin=False))
    assert protocol.events_received() == [Fragment("κό", True, True, False)]
    protocol.receive_data(data[:40])
    assert protocol.events_received() == []
    protocol.receive_data(data[40:60])
    assert only_failure(protocol.events_received()).code == 1007


@pytest.mark.parametrize(
    ("prefix", "bad"),
    [
        (b"\xf4", b"\x90"),  # above U+10FFFF, known from the second byte
        (b"\xed", b"\xa0"),  # a surrogate, known from the second byte
        (b"\xe0", b"\x80"),  # an overlong three-byte form
        (b"\xe2\x82", b"a"),  # a sequence cut by an ASCII byte
    ],
)
def test_utf8_fails_fast_when_the_bad_sequence_spans_reads(prefix: bytes, bad: bytes) -> None:
    head = frame_bytes(0x1, b"ok" + prefix + bad + b"z" * 500)[: 4 + 2]
    protocol = ClientProtocol()
    protocol.receive_data(head + prefix)
    assert protocol.events_received() == []
    protocol.receive_data(bad)
    assert only_failure(protocol.events_received()).code == 1007


def test_a_valid_prefix_does_not_fail() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, "€𝄞".encode() * 100)[: 4 + 5])  # inside 𝄞
    assert protocol.events_received() == []
    assert protocol.failure is None


def test_multibyte_characters_split_across_frames_and_reads() -> None:
    text = "a€𝄞éz"
    encoded = text.encode()
    for cut in range(len(encoded) + 1):
        data = frame_bytes(0x1, encoded[:cut], fin=False) + frame_bytes(0x0, encoded[cut:])
        for chunk in (None, 1, 3):
            events = feed(data, chunk=chunk)
            assert all(isinstance(event, Fragment) for event in events), (cut, chunk, events)
            assert "".join(event.data for event in events) == text  # type: ignore[union-attr,misc]


def test_multibyte_character_split_over_three_frames() -> None:
    encoded = "𝄞".encode()
    data = (
        frame_bytes(0x1, encoded[:1], fin=False)
        + frame_bytes(0x0, encoded[1:3], fin=False)
        + frame_bytes(0x0, encoded[3:])
    )
    assert feed(data) == [
        Fragment("", True, True, False),
        Fragment("", True, False, False),
        Fragment("𝄞", True, False, True),
    ]


def test_message_ending_inside_a_character_is_invalid() -> None:
    assert only_failure(feed(frame_bytes(0x1, "€".encode()[:2]))).code == 1007
    data = frame_bytes(0x1, b"ok", fin=False) + frame_bytes(0x0, "𝄞".encode()[:3])
    events = feed(data)
    assert events[0] == Fragment("ok", True, True, False)
    assert only_failure(events).code == 1007


def test_binary_messages_are_not_utf8_checked() -> None:
    data = frame_bytes(0x2, b"\xff", fin=False) + frame_bytes(0x0, b"\xc0")
    assert feed(data, chunk=1) == [
        Fragment(b"\xff", False, True, False),
        Fragment(b"\xc0", False, False, True),
    ]


def test_compressed_text_is_utf8_checked() -> None:
    data = frame_bytes(0x1, deflate(b"ok\xff"), rsv=0x40)
    assert only_failure(feed(data, extensions=[pmd()])).code == 1007
    data = frame_bytes(0x1, deflate("κόσμε".encode()), rsv=0x40)
    assert feed(data, extensions=[pmd()], chunk=1) == [Fragment("κόσμε", True, True, True)]


def test_whole_compressed_frames_of_each_length_form() -> None:
    """A whole compressed message in one frame (the frame loop inflates it
    itself below 64 KiB) is the same fed at once or a byte at a time, with a
    7-bit, 16-bit or 64-bit length; one past max_size fails with 1009."""
    noise = random.Random(3)
    texts = [
        "",
        "Hello",
        "κόσμε" * 40,
        "".join(chr(noise.randrange(32, 0x3000)) for _ in range(40_000)),
    ]
    for text in texts:
        payload = text.encode()
        body = deflate(payload)
        for opcode, data in [(0x1, text), (0x2, payload)]:
            frame = frame_bytes(opcode, body, rsv=0x40)
            expected = [Fragment(data, opcode == 0x1, True, True)]
            for chunk in (None, 1):
                assert feed(frame, chunk=chunk, extensions=[pmd()]) == expected
            assert feed(frame, max_size=len(payload), extensions=[pmd()]) == expected
            if payload:
                failure = only_failure(feed(frame, max_size=len(payload) - 1, extensions=[pmd()]))
                assert failure.code == 1009
    assert {len(deflate(text.encode())) > 65535 for text in texts} == {False, True}


def test_compressed_frames_keep_the_message_order_rules() -> None:
    """After a whole compressed message, a fragmented one and the frames of a
    message already started are still checked."""
    whole = frame_bytes(0x1, deflate(b"one"), rsv=0x40)
    start = frame_bytes(0x1, deflate(b"two"), fin=False, rsv=0x40)
    events = feed(whole + start + frame_bytes(0x0, b"") + whole, extensions=[pmd()])
    assert [event.data for event in events] == ["one", "two", "", "one"]  # type: ignore[union-attr]
    failure = only_failure(feed(start + whole, extensions=[pmd()]))
    assert failure.code == 1002 and "inside a fragmented message" in failure.reason
    failure = only_failure(feed(frame_bytes(0x1, b"a", fin=False) + whole, extensions=[pmd()]))
    assert failure.code == 1002


def test_deflate_context_carries_across_whole_frames() -> None:
    """With context takeover the server's second message refers back to the
    first: both are inflated by the same decompressor."""
    compressor = zlib.compressobj(wbits=-15)
    data = b""
    for _ in range(3):
        body = compressor.compress(b"Hello" * 30) + compressor.flush(zlib.Z_SYNC_FLUSH)
        data += frame_bytes(0x1, body[:-4], rsv=0x40)
    assert len(data) < 100
    assert feed(data, extensions=[pmd()]) == [Fragment("Hello" * 30, True, True, True)] * 3


# -- max_size ------------------------------------------------------------------------


def test_max_size_checked_from_the_header() -> None:
    protocol = ClientProtocol(max_size=100)
    protocol.receive_data(b"\x82\x7e\x03\xe8")  # 1000 bytes announced, none sent
    failure = only_failure(protocol.events_received())
    assert failure.code == 1009
    assert isinstance(failure.error, PayloadTooBig)
    assert "100 bytes" in failure.reason


def test_max_size_boundary() -> None:
    assert feed(frame_bytes(0x2, b"x" * 100), max_size=100) == [
        Fragment(b"x" * 100, False, True, True)
    ]
    assert only_failure(feed(frame_bytes(0x2, b"x" * 101), max_size=100)).code == 1009
    assert feed(frame_bytes(0x1, b"x" * 100), max_size=100) == [
        Fragment("x" * 100, True, True, True)
    ]
    assert only_failure(feed(frame_bytes(0x1, b"x" * 101), max_size=100)).code == 1009


def test_max_size_counted_across_fragments() -> None:
    data = (
        frame_bytes(0x2, b"x" * 60, fin=False)
        + frame_bytes(0x9, b"")
        + frame_bytes(0x0, b"x" * 40, fin=False)
        + frame_bytes(0x0, b"x")
    )
    events = feed(data, max_size=100)
    assert events[:3] == [
        Fragment(b"x" * 60, False, True, False),
        Ping(b""),
        Fragment(b"x" * 40, False, False, False),
    ]
    assert only_failure(events).code == 1009
    assert len(feed(data, max_size=101)) == 4
    assert len(feed(data, max_size=None)) == 4


def test_max_size_applies_per_message() -> None:
    data = (
        frame_bytes(0x2, b"x" * 80) * 5
        + frame_bytes(0x1, b"y" * 40, fin=False)
        + frame_bytes(0x0, b"y" * 60)
    )
    events = feed(data, max_size=100)
    assert len(events) == 7 and not any(isinstance(event, Failure) for event in events)


def test_control_frames_do_not_count_towards_max_size() -> None:
    data = frame_bytes(0x9, b"x" * 125) + frame_bytes(0x2, b"y" * 10)
    assert feed(data, max_size=10) == [Ping(b"x" * 125), Fragment(b"y" * 10, False, True, True)]


def test_no_max_size() -> None:
    protocol = ClientProtocol(max_size=None)
    protocol.receive_data(b"\x82\x7f" + struct.pack("!Q", 2**33))
    assert protocol.events_received() == []
    assert protocol.failure is None
    payload = b"z" * (3 * 2**20)
    assert feed(frame_bytes(0x2, payload), max_size=None, chunk=2**16) == [
        Fragment(payload, False, True, True)
    ]


def test_no_max_size_allocates_nothing_from_a_header_alone() -> None:
    """Without max_size, a header announcing 2**62 bytes is no reason to
    allocate them (or to raise MemoryError): bytes are kept as they arrive."""
    protocol = ClientProtocol(max_size=None)
    protocol.receive_data(b"\x82\x7f" + struct.pack("!Q", 2**62) + b"abc")
    assert protocol.events_received() == []
    assert protocol.direct_buffer() is None
    assert len(protocol._buffer) == 13


def test_no_max_size_huge_frame_is_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol_module, "_DIRECT_UNBOUNDED_MAX", 70000)
    text = "€" * 30000
    data = frame_bytes(0x1, text.encode()) + frame_bytes(0x2, b"x" * 69000)
    protocol = ClientProtocol(max_size=None)
    events: list[Event] = []
    for start in range(0, len(data), 4096):
        protocol.receive_data(data[start : start + 4096])
        if start == 4096 * 3:
            assert protocol.direct_buffer() is None
        events += protocol.events_received()
    assert events == [Fragment(text, True, True, True), Fragment(b"x" * 69000, False, True, True)]


def test_max_size_counts_decompressed_bytes() -> None:
    bomb = frame_bytes(0x2, deflate(b"\x00" * 10_000_000), rsv=0x40)
    assert len(bomb) < 20_000
    failure = only_failure(feed(bomb, max_size=2**20, extensions=[pmd()]))
    assert failure.code == 1009
    payload = b"\x00" * 2**20
    assert feed(
        frame_bytes(0x2, deflate(payload), rsv=0x40), max_size=2**20, extensions=[pmd()]
    ) == [Fragment(payload, False, True, True)]


def test_max_size_counts_decompressed_bytes_across_fragments() -> None:
    body = deflate(b"a" * 3000)
    data = frame_bytes(0x1, body[:10], fin=False, rsv=0x40) + frame_bytes(0x0, body[10:])
    assert only_failure(feed(data, max_size=2999, extensions=[pmd()])).code == 1009
    events = feed(data, max_size=3000, extensions=[pmd()])
    assert "".join(event.data for event in events) == "a" * 3000  # type: ignore[union-attr,misc]


def test_max_size_bounds_a_compressed_frame_from_its_header() -> None:
    """A compressed frame announcing far more than max_size fails before its
    payload arrives, instead of being buffered (or allocated) whole."""
    protocol = ClientProtocol(max_size=1000, extensions=[pmd()])
    protocol.receive_data(b"\xc2\x7f" + struct.pack("!Q", 2**62))
    assert only_failure(protocol.events_received()).code == 1009
    protocol = ClientProtocol(max_size=1000, extensions=[pmd()])
    protocol.receive_data(b"\xc2\x7e\xff\xff" + b"\x00" * 100)
    assert only_failure(protocol.events_received()).code == 1009
    assert len(protocol._buffer) == 0


def test_incompressible_message_at_max_size_passes() -> None:
    """Deflate makes random data slightly larger: a message of exactly max_size
    bytes must not fail because its compressed frames are bigger."""
    payload = random.Random(7).randbytes(1000)  # incompressible
    body = deflate(payload)
    assert len(body) > len(payload)
    data = frame_bytes(0x2, body[:6], fin=False, rsv=0x40) + frame_bytes(0x0, body[6:])
    events = feed(data, max_size=len(payload), extensions=[pmd()])
    assert b"".join(event.data for event in events) == payload  # type: ignore[union-attr,misc]


# -- closing and state -----------------------------------------------------------------


def test_eof() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x8, close_payload(1000)))
    assert state_of(protocol) is State.OPEN  # until the client answers
    protocol.send_close(1000)
    assert state_of(protocol) is State.CLOSING
    protocol.receive_eof()
    assert state_of(protocol) is State.CLOSED
    assert protocol.eof_received


def test_eof_without_close_frames_is_closed() -> None:
    protocol = ClientProtocol()
    protocol.receive_eof()
    assert state_of(protocol) is State.CLOSED


def test_eof_after_client_close() -> None:
    protocol = ClientProtocol()
    protocol.send_close(1000)
    protocol.receive_eof()
    assert state_of(protocol) is State.CLOSED
    protocol.receive_data(frame_bytes(0x1, b"late"))
    assert protocol.events_received() == []


def test_eof_then_close_reply() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x8, close_payload(1001)))
    protocol.receive_eof()
    assert state_of(protocol) is State.CLOSED
    protocol.send_close(1001)
    assert state_of(protocol) is State.CLOSED


def test_close_reply_order_is_recorded() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x8, close_payload(1001)))
    protocol.send_close(1001)
    assert protocol.close_rcvd_then_sent is True
    assert protocol.close_rcvd == protocol.close_sent == Close(1001, "")
    protocol = ClientProtocol()
    protocol.send_close(1000)
    protocol.receive_data(frame_bytes(0x8, close_payload(1000)))
    assert protocol.close_rcvd_then_sent is False
    assert state_of(protocol) is State.CLOSING


def test_fail_answers_with_the_failure_code() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, b"\xff"))
    failure = only_failure(protocol.events_received())
    frame = protocol.fail(failure.code, failure.reason)
    header, payload = unmask(frame)
    assert header[0] == 0x88
    assert Close.parse(payload) == Close(1007, failure.reason)
    assert state_of(protocol) is State.CLOSING
    assert protocol.fail(1002) == b""


def test_fail_stops_parsing() -> None:
    protocol = ClientProtocol()
    protocol.fail(1008, "policy")
    protocol.receive_data(frame_bytes(0x1, b"ignored"))
    assert protocol.events_received() == []


# -- sending ---------------------------------------------------------------------------


def test_sending_data_frames() -> None:
    protocol = ClientProtocol()
    header, body = protocol.send_data(OP_TEXT, b"Hello")
    assert header[0] == 0x81 and header[1] == 0x85 and len(header) == 6
    assert unmask(header + body) == (b"\x81\x85", b"Hello")
    header, body = protocol.send_data(OP_BINARY, b"a", fin=False)
    assert header[0] == 0x02
    with pytest.raises(ProtocolError, match="inside a fragmented message"):
        protocol.send_data(OP_TEXT, b"b")
    with pytest.raises(ProtocolError, match="inside a fragmented message"):
        protocol.send_data(OP_BINARY, b"b", fin=False)
    header, body = protocol.send_data(OP_CONT, b"b", fin=False)
    assert header[0] == 0x00
    header, body = protocol.send_data(OP_CONT, b"b")
    assert header[0] == 0x80
    with pytest.raises(ProtocolError, match="no fragmented message"):
        protocol.send_data(OP_CONT, b"c")
    header, body = protocol.send_data(OP_TEXT, b"again")
    assert unmask(header + body) == (b"\x81\x85", b"again")


def test_send_continuation_first_is_refused() -> None:
    with pytest.raises(ProtocolError, match="no fragmented message"):
        ClientProtocol().send_data(OP_CONT, b"x", fin=False)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_send_data_sizes(size: int) -> None:
    payload = bytes(size)
    header, body = ClientProtocol().send_data(OP_BINARY, payload)
    assert split_client_frames(header + body) == [
        (serialize_header(0x82, size), payload),
    ]


def serialize_header(first: int, size: int) -> bytes:
    if size < 126:
        return bytes([first, 0x80 | size])
    if size < 65536:
        return bytes([first, 0xFE]) + struct.pack("!H", size)
    return bytes([first, 0xFF]) + struct.pack("!Q", size)


def test_send_data_after_close_is_invalid_state() -> None:
    protocol = ClientProtocol()
    protocol.send_data(OP_TEXT, b"a", fin=False)
    protocol.send_close(1000)
    for opcode in (OP_TEXT, OP_BINARY, OP_CONT):
        with pytest.raises(InvalidState, match="closing or closed"):
            protocol.send_data(opcode, b"late")
    with pytest.raises(InvalidState):
        protocol.send_close()
    # websockets 17: InvalidState is an AssertionError, not a ProtocolError.
    assert isinstance(InvalidState("x"), AssertionError)
    assert not isinstance(InvalidState("x"), ProtocolError)


def test_sending_control_frames() -> None:
    protocol = ClientProtocol()
    assert unmask(protocol.send_ping(b"abc")) == (b"\x89\x83", b"abc")
    assert unmask(protocol.send_pong(b"abc")) == (b"\x8a\x83", b"abc")
    assert unmask(protocol.send_ping(b"")) == (b"\x89\x80", b"")
    assert unmask(protocol.send_pong(b"x" * 125)) == (b"\x8a\xfd", b"x" * 125)
    with pytest.raises(ProtocolError, match="too long"):
        protocol.send_ping(b"x" * 126)
    with pytest.raises(ProtocolError, match="too long"):
        protocol.send_pong(b"x" * 126)


def test_pong_echoes_a_ping() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x9, b"\x00\xffecho"))
    (ping,) = protocol.events_received()
    assert isinstance(ping, Ping)
    assert unmask(protocol.send_pong(ping.data)) == (b"\x8a\x86", b"\x00\xffecho")


def test_control_frames_may_interleave_a_fragmented_message() -> None:
    protocol = ClientProtocol()
    wire = b"".join(protocol.send_data(OP_TEXT, b"a", fin=False))
    wire += protocol.send_ping(b"p")
    wire += b"".join(protocol.send_data(OP_CONT, b"b"))
    assert [(h[0] & 0x0F, p) for h, p in split_client_frames(wire)] == [
        (OP_TEXT, b"a"),
        (OP_PING, b"p"),
        (OP_CONT, b"b"),
    ]


def test_send_close() -> None:
    protocol = ClientProtocol()
    frame = protocol.send_close(1001, "bye")
    assert unmask(frame) == (b"\x88\x85", b"\x03\xe9bye")
    assert state_of(protocol) is State.CLOSING
    assert protocol.close_sent == Close(1001, "bye")
    assert unmask(ClientProtocol().send_close()) == (b"\x88\x82", b"\x03\xe8")
    assert unmask(ClientProtocol().send_close(1005)) == (b"\x88\x80", b"")


def test_close_reason_length_limit() -> None:
    protocol = ClientProtocol()
    with pytest.raises(ProtocolError, match="too long"):
        protocol.send_close(1000, "x" * 124)
    with pytest.raises(ProtocolError, match="too long"):
        protocol.send_close(1000, "é" * 62)  # 124 bytes of UTF-8
    assert state_of(protocol) is State.OPEN and protocol.close_sent is None
    header, payload = unmask(protocol.send_close(1000, "é" * 61 + "x"))  # 123 bytes
    assert header == b"\x88\xfd"
    assert payload == b"\x03\xe8" + ("é" * 61 + "x").encode()


@pytest.mark.parametrize("code", [0, 999, 1004, 1006, 1015, 1016, 2999, 5000])
def test_send_close_invalid_code(code: int) -> None:
    protocol = ClientProtocol()
    with pytest.raises(ProtocolError, match="invalid close code"):
        protocol.send_close(code)
    assert state_of(protocol) is State.OPEN
    assert protocol.close_sent is None
    protocol.send_data(OP_TEXT, b"still open")


def test_send_with_deflate() -> None:
    protocol = ClientProtocol(extensions=[pmd()])
    wire = b"".join(protocol.send_data(OP_TEXT, b"a" * 100, fin=False))
    wire += b"".join(protocol.send_data(OP_CONT, b"b" * 100))
    wire += protocol.send_ping(b"p")
    frames = split_client_frames(wire)
    assert [header[0] for header, _ in frames] == [0x41, 0x80, 0x89]
    decoder = zlib.decompressobj(wbits=-15)
    inflated = decoder.decompress(frames[0][1] + frames[1][1] + b"\x00\x00\xff\xff")
    assert inflated == b"a" * 100 + b"b" * 100
    assert frames[2][1] == b"p"


# -- large frames read straight into their buffer ------------------------------------------


def test_large_frame_read_straight_into_its_buffer() -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB
    data = frame_bytes(0x2, payload) + frame_bytes(0x1, b"next")
    protocol = ClientProtocol(max_size=None)
    protocol.receive_data(data[:1000])
    assert protocol.events_received() == []
    target = protocol.direct_buffer()
    assert target is not None and len(target) == len(payload) - (1000 - 10)
    rest = data[1000:]
    target[: len(target)] = rest[: len(target)]
    protocol.direct_received(len(target))
    assert protocol.direct_buffer() is None
    protocol.receive_data(rest[len(target) :])
    assert protocol.events_received() == [
        Fragment(payload, False, True, True),
        Fragment("next", True, True, True),
    ]


def test_invalid_utf8_in_a_large_frame_read_directly() -> None:
    data = frame_bytes(0x1, b"a" * 70000 + b"\xff" + b"a" * 70000)
    protocol = ClientProtocol(max_size=None)
    protocol.receive_data(data[:100])
    target = protocol.direct_buffer()
    assert target is not None
    target[:70000] = data[100:70100]
    protocol.direct_received(70000)
    failure = only_failure(protocol.events_received())
    assert failure.code == 1007
    assert protocol.direct_buffer() is None


def test_large_text_fragments_split_characters() -> None:
    text = "€" * 30000  # 90000 bytes
    encoded = text.encode()
    data = frame_bytes(0x1, encoded[:70001], fin=False) + frame_bytes(0x0, encoded[70001:])
    events = feed(data, chunk=4096, max_size=None)
    assert "".join(event.data for event in events) == text  # type: ignore[union-attr,misc]


def test_large_frame_read_directly_is_dropped_after_the_client_failed() -> None:
    protocol = ClientProtocol(max_size=None)
    frame = frame_bytes(0x2, b"\x00" * 100_000)
    protocol.receive_data(frame[:1000])
    assert protocol.direct_buffer() is not None
    protocol.fail(1011)
    assert protocol.direct_buffer() is None
    protocol.direct_received(500)
    protocol.receive_data(frame[1000:])
    assert protocol.events_received() == []
