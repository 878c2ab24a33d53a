"""Property tests of the sans-I/O core: any input ends in events or one clean
failure, and everything the client serializes parses back."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from requests_ws.extensions import PerMessageDeflate
from requests_ws.frames import OP_BINARY, OP_CONT, OP_TEXT
from requests_ws.protocol import ClientProtocol, Failure, Fragment

from .peers.raw_peer import frame_bytes
from .test_frames import split_client_frames

MAX_SIZE = 4096


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=8))
def test_any_bytes_give_events_or_one_clean_failure(data: bytes, cuts: list[int]) -> None:
    protocol = ClientProtocol(max_size=MAX_SIZE)
    events = []
    for piece in chunked(data, cuts):
        protocol.receive_data(piece)  # never raises
        assert len(protocol._buffer) <= MAX_SIZE + 14
        events.extend(protocol.events_received())
    failures = [event for event in events if isinstance(event, Failure)]
    assert len(failures) <= 1
    if failures:
        assert events[-1] is failures[0]
        assert failures[0].code in (1002, 1007, 1009)
        assert len(failures[0].reason.encode()) <= 123


frame_strategy = st.tuples(
    st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]),
    st.binary(max_size=200),
    st.booleans(),
    st.sampled_from([0, 0x10, 0x20, 0x40]),
)


@settings(max_examples=300)
@given(st.lists(frame_strategy, max_size=12), st.lists(st.integers(min_value=0), max_size=6))
def test_frame_soup_never_escapes(
    frames: list[tuple[int, bytes, bool, int]], cuts: list[int]
) -> None:
    data = b"".join(frame_bytes(op, payload, fin=fin, rsv=rsv) for op, payload, fin, rsv in frames)
    protocol = ClientProtocol(max_size=1000)
    events = []
    for piece in chunked(data, cuts):
        protocol.receive_data(piece)
        events.extend(protocol.events_received())
    assert sum(isinstance(event, Failure) for event in events) <= 1


def parse_client_frames(data: bytes) -> bytes:
    """Turn the client's masked frames into the same frames unmasked (as a server sees them)."""
    return b"".join(
        bytes([header[0], header[1] & 0x7F]) + header[2:] + payload
        for header, payload in split_client_frames(data)
    )


sizes = st.sampled_from([0, 1, 125, 126, 1000, 65535, 65536, 70000])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(sizes, st.booleans(), st.integers(min_value=1, max_value=3)), max_size=4),
    st.booleans(),
    st.booleans(),
)
def test_serialize_then_parse_round_trip(
    messages: list[tuple[int, bool, int]], compress: bool, no_context_takeover: bool
) -> None:
    def extensions() -> list[PerMessageDeflate]:
        if not compress:
            return []
        return [PerMessageDeflate(no_context_takeover, no_context_takeover, 15, 15)]

    sender = ClientProtocol(max_size=None, extensions=extensions())
    receiver = ClientProtocol(max_size=None, extensions=extensions())
    wire = b""
    expected: list[str | bytes] = []
    for size, is_text, pieces in messages:
        payload = os.urandom(size // 2 + 1).hex()[:size].encode() if is_text else os.urandom(size)
        step = max(1, len(payload) // pieces)
        parts = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        for index, part in enumerate(parts):
            opcode = (OP_TEXT if is_text else OP_BINARY) if index == 0 else OP_CONT
            header, body = sender.send_data(opcode, part, fin=index == len(parts) - 1)
            wire += header + body
        expected.append(payload.decode() if is_text else payload)
    receiver.receive_data(parse_client_frames(wire))
    fragments = receiver.events_received()
    assert all(isinstance(event, Fragment) for event in fragments)
    received: list[str | bytes] = []
    current: list[str | bytes] = []
    for fragment in fragments:
        assert isinstance(fragment, Fragment)
        current.append(fragment.data)
        if fragment.fin:
            received.append("".join(current) if fragment.is_text else b"".join(current))  # type: ignore[arg-type]
            current = []
    assert received == expected
