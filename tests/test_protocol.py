"""ClientProtocol: every input rule of RFC 6455 section 5, byte for byte."""

from __future__ import annotations

import struct

import pytest

from requests_ws.exceptions import PayloadTooBig, ProtocolError
from requests_ws.frames import OP_BINARY, OP_CONT, OP_PING, OP_TEXT
from requests_ws.protocol import (
    ClientProtocol,
    CloseReceived,
    Failure,
    Fragment,
    InvalidState,
    Ping,
    Pong,
    State,
)

from .peers.raw_peer import close_payload, frame_bytes
from .test_frames import unmask


def feed(data: bytes, *, chunk: int | None = None, **kwargs: object) -> list[object]:
    protocol = ClientProtocol(**kwargs)  # type: ignore[arg-type]
    if chunk is None:
        protocol.receive_data(data)
    else:
        for start in range(0, len(data), chunk):
            protocol.receive_data(data[start : start + chunk])
    return list(protocol.events_received())


def only_failure(events: list[object]) -> Failure:
    assert isinstance(events[-1], Failure)
    assert sum(isinstance(event, Failure) for event in events) == 1
    failure = events[-1]
    assert len(failure.reason.encode()) <= 123
    return failure


def test_data_and_control_frames() -> None:
    events = feed(
        frame_bytes(0x1, b"text")
        + frame_bytes(0x2, b"\x00\x01")
        + frame_bytes(0x9, b"ping")
        + frame_bytes(0xA, b"pong")
        + frame_bytes(0x8, close_payload(1000, "bye"))
    )
    assert events[0] == Fragment("text", True, True, True)
    assert events[1] == Fragment(b"\x00\x01", False, True, True)
    assert events[2] == Ping(b"ping")
    assert events[3] == Pong(b"pong")
    assert isinstance(events[4], CloseReceived) and events[4].close.code == 1000


def test_every_byte_split() -> None:
    data = frame_bytes(0x1, "héllo wörld".encode()) + frame_bytes(0x2, b"x" * 300)
    events = feed(data, chunk=1)
    assert events == [
        Fragment("héllo wörld", True, True, True),
        Fragment(b"x" * 300, False, True, True),
    ]


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


def test_close_inside_fragmented_message_is_a_normal_close() -> None:
    events = feed(frame_bytes(0x2, b"a", fin=False) + frame_bytes(0x8, close_payload(1000)))
    assert isinstance(events[-1], CloseReceived)
    assert not any(isinstance(event, Failure) for event in events)


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"\x81\x85abcd" + b"hello", 1002, "masked"),
        (b"\xc1\x00", 1002, "reserved bits"),
        (b"\xa1\x00", 1002, "reserved bits"),
        (b"\x91\x00", 1002, "reserved bits"),
        (b"\x83\x00", 1002, "reserved opcode 0x3"),
        (b"\x87\x00", 1002, "reserved opcode 0x7"),
        (b"\x8b\x00", 1002, "reserved opcode 0xb"),
        (b"\x8f\x00", 1002, "reserved opcode 0xf"),
        (b"\x09\x00", 1002, "fragmented a control frame"),
        (frame_bytes(0x9, b"x" * 126), 1002, "126-byte"),
        (b"\x80\x00", 1002, "continuation frame with no fragmented message"),
        (frame_bytes(0x1, b"a", fin=False) + frame_bytes(0x2, b"b"), 1002, "new message"),
        (frame_bytes(0x8, b"\x03"), 1002, "too short"),
        (frame_bytes(0x8, struct.pack("!H", 1005)), 1002, "invalid close code 1005"),
        (frame_bytes(0x8, struct.pack("!H", 999)), 1002, "invalid close code 999"),
        (frame_bytes(0x8, b"\x03\xe8\xff"), 1007, "invalid UTF-8"),
        (frame_bytes(0x1, b"\xff"), 1007, "invalid UTF-8"),
        (b"\x82\x7e\x00\x05hello", 1002, "16-bit length"),
        (b"\x82\x7f" + struct.pack("!Q", 5) + b"hello", 1002, "64-bit length"),
        (b"\x82\x7f" + struct.pack("!Q", 1 << 63), 1002, "top bit"),
    ],
)
def test_input_rules(data: bytes, code: int, words: str) -> None:
    failure = only_failure(feed(data))
    assert failure.code == code
    assert words in failure.reason or words in str(failure.error)


def test_failure_comes_after_earlier_events_and_stops_parsing() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, b"first") + b"\x83\x00" + frame_bytes(0x1, b"never"))
    protocol.receive_data(frame_bytes(0x1, b"never either"))
    events = protocol.events_received()
    assert events[0] == Fragment("first", True, True, True)
    assert isinstance(events[1], Failure)
    assert len(events) == 2


def test_utf8_fails_fast_in_the_frame_that_carries_it() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x1, b"valid", fin=False))
    assert protocol.events_received() == [Fragment("valid", True, True, False)]
    protocol.receive_data(frame_bytes(0x0, b"\xed\xa0\x80", fin=False))  # a surrogate
    failure = only_failure(protocol.events_received())
    assert failure.code == 1007


def test_utf8_fails_fast_inside_a_frame_arriving_in_pieces() -> None:
    payload = b"a" * 1000 + b"\xc0\xaf" + b"b" * 100000
    data = frame_bytes(0x1, payload)
    protocol = ClientProtocol(max_size=None)
    protocol.receive_data(data[:500])
    assert protocol.events_received() == []
    protocol.receive_data(data[500:1100])  # the invalid bytes, long before the frame ends
    failure = only_failure(protocol.events_received())
    assert failure.code == 1007


def test_multibyte_characters_split_across_frames_and_reads() -> None:
    text = "€𝄞é"
    encoded = text.encode()
    data = frame_bytes(0x1, encoded[:2], fin=False) + frame_bytes(0x0, encoded[2:])
    events = feed(data, chunk=3)
    assert "".join(event.data for event in events) == text  # type: ignore[attr-defined]


def test_message_ending_inside_a_character_is_invalid() -> None:
    failure = only_failure(feed(frame_bytes(0x1, "€".encode()[:2])))
    assert failure.code == 1007


def test_max_size_checked_from_the_header() -> None:
    protocol = ClientProtocol(max_size=100)
    protocol.receive_data(b"\x82\x7e\x03\xe8")  # 1000 bytes announced, none sent
    failure = only_failure(protocol.events_received())
    assert failure.code == 1009
    assert isinstance(failure.error, PayloadTooBig)


def test_max_size_counted_across_fragments() -> None:
    data = frame_bytes(0x2, b"x" * 60, fin=False) + frame_bytes(0x0, b"x" * 60)
    failure = only_failure(feed(data, max_size=100))
    assert failure.code == 1009
    events = feed(data, max_size=None)
    assert len(events) == 2


def test_eof() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x8, close_payload(1000)))
    protocol.send_close(1000)
    assert protocol.state is State.CLOSING
    protocol.receive_eof()
    assert protocol.state is State.CLOSED


def test_sending_data_frames() -> None:
    protocol = ClientProtocol()
    header, body = protocol.send_data(OP_TEXT, b"Hello")
    assert header[0] == 0x81 and header[1] == 0x85
    assert unmask(header + body)[1] == b"Hello"
    header, body = protocol.send_data(OP_BINARY, b"a", fin=False)
    assert header[0] == 0x02
    with pytest.raises(ProtocolError, match="inside a fragmented message"):
        protocol.send_data(OP_TEXT, b"b")
    header, body = protocol.send_data(OP_CONT, b"b")
    assert header[0] == 0x80
    with pytest.raises(ProtocolError, match="no fragmented message"):
        protocol.send_data(OP_CONT, b"c")


def test_sending_control_frames() -> None:
    protocol = ClientProtocol()
    assert unmask(protocol.send_ping(b"abc")) == (b"\x89\x83", b"abc")
    assert unmask(protocol.send_pong(b"abc")) == (b"\x8a\x83", b"abc")
    with pytest.raises(ProtocolError, match="too long"):
        protocol.send_ping(b"x" * 126)
    with pytest.raises(ProtocolError, match="too long"):
        protocol.send_close(1000, "x" * 124)
    frame = protocol.send_close(1001, "bye")
    assert unmask(frame) == (b"\x88\x85", b"\x03\xe9bye")
    assert protocol.state is State.CLOSING
    with pytest.raises(InvalidState):
        protocol.send_data(OP_TEXT, b"late")
    with pytest.raises(InvalidState):
        protocol.send_close()
    assert protocol.fail(1002) == b""


def test_close_reply_order_is_recorded() -> None:
    protocol = ClientProtocol()
    protocol.receive_data(frame_bytes(0x8, close_payload(1001)))
    protocol.send_close(1001)
    assert protocol.close_rcvd_then_sent is True
    protocol = ClientProtocol()
    protocol.send_close(1000)
    protocol.receive_data(frame_bytes(0x8, close_payload(1000)))
    assert protocol.close_rcvd_then_sent is False


def test_ping_payload_limit_is_125() -> None:
    assert feed(frame_bytes(OP_PING, b"x" * 125)) == [Ping(b"x" * 125)]


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
