"""Property tests of the sans-I/O core: any input ends in events or one clean
failure, however it is cut into reads, and everything the client serializes
parses back."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from requests_ws.extensions import PerMessageDeflate
from requests_ws.frames import OP_BINARY, OP_CONT, OP_TEXT, serialize_frame
from requests_ws.protocol import ClientProtocol, CloseReceived, Event, Failure, Fragment, Ping, Pong

from .peers.raw_peer import frame_bytes
from .test_frames import split_client_frames

MAX_SIZE = 4096
# The most the protocol keeps buffered beyond max_size: one frame header, and
# for a compressed frame deflate's worst-case overhead.
HEADER = 14
DEFLATE_SLACK = (MAX_SIZE >> 10) + 1024

Summary = tuple[object, ...]


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def summary(event: Event) -> Summary:
    """Events as comparable values (a Failure's exception does not compare)."""
    if isinstance(event, Failure):
        return ("failure", event.code)
    if isinstance(event, Fragment):
        return ("fragment", event.data, event.is_text, event.first, event.fin)
    if isinstance(event, Ping):
        return ("ping", event.data)
    if isinstance(event, Pong):
        return ("pong", event.data)
    assert isinstance(event, CloseReceived)
    return ("close", event.close.code, event.close.reason)


def run(
    pieces: list[bytes],
    *,
    max_size: int | None = MAX_SIZE,
    extensions: Callable[[], list[PerMessageDeflate]] = list,
    bound: int | None = None,
) -> list[Summary]:
    """Feed the pieces; check the failure rules and the buffer bound after each read."""
    protocol = ClientProtocol(max_size=max_size, extensions=extensions())
    events: list[Event] = []
    for piece in pieces:
        protocol.receive_data(piece)  # never raises
        if bound is not None:
            assert len(protocol._buffer) <= bound
            direct = protocol.direct_buffer()
            assert direct is None or len(direct) <= bound
        events.extend(protocol.events_received())
    failures = [event for event in events if isinstance(event, Failure)]
    assert len(failures) <= 1
    if failures:
        failure = failures[0]
        assert events[-1] is failure, "no event may follow a failure"
        assert failure.code in (1002, 1007, 1009)
        assert 0 < len(failure.reason.encode()) <= 123
        assert protocol.failure is failure
        expected = {1002: "ProtocolError", 1007: "UnicodeDecodeError", 1009: "PayloadTooBig"}
        assert type(failure.error).__name__ == expected[failure.code]
    return [summary(event) for event in events]


def messages_of(events: list[Summary]) -> list[str | bytes]:
    """Join fragments into messages; every event must be a fragment."""
    messages: list[str | bytes] = []
    texts: list[str] = []
    blobs: list[bytes] = []
    for event in events:
        assert event[0] == "fragment", event
        _, data, is_text, _, fin = event
        if is_text:
            assert isinstance(data, str)
            texts.append(data)
        else:
            assert isinstance(data, bytes)
            blobs.append(data)
        if fin:
            messages.append("".join(texts) if is_text else b"".join(blobs))
            texts, blobs = [], []
    return messages


def deflate_extensions() -> list[PerMessageDeflate]:
    return [PerMessageDeflate(False, False, 15, 15)]


cuts_strategy = st.lists(st.integers(min_value=0), max_size=8)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), cuts_strategy)
def test_any_bytes_give_events_or_one_clean_failure(data: bytes, cuts: list[int]) -> None:
    events = run(chunked(data, cuts), bound=MAX_SIZE + HEADER)
    assert events == run([data])


frame_strategy = st.tuples(
    st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]),
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=60).map(str.encode),
        st.sampled_from([b"\x03\xe8", b"\x03\xe8ok", b"\x0b\xb8", b"\xed\xa0\x80", "€".encode()]),
    ),
    st.booleans(),
    st.sampled_from([0, 0, 0, 0x10, 0x20, 0x40]),
)


def soup(frames: list[tuple[int, bytes, bool, int]]) -> bytes:
    return b"".join(frame_bytes(op, payload, fin=fin, rsv=rsv) for op, payload, fin, rsv in frames)


@settings(max_examples=300)
@given(st.lists(frame_strategy, max_size=12), cuts_strategy)
def test_frame_soup_never_escapes_and_cuts_do_not_matter(
    frames: list[tuple[int, bytes, bool, int]], cuts: list[int]
) -> None:
    data = soup(frames)
    events = run(chunked(data, cuts), max_size=1000, bound=1000 + HEADER)
    assert events == run([data], max_size=1000)
    assert events == run([data[i : i + 1] for i in range(len(data))], max_size=1000)


compressed_frame = st.tuples(
    st.sampled_from([0x0, 0x1, 0x2, 0x9]),
    st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=3000).map(lambda data: zlib.compress(data)[2:-4]),
        st.text(max_size=200).map(
            lambda text: zlib.compressobj(wbits=-15).compress(text.encode() * 10)
        ),
    ),
    st.booleans(),
    st.sampled_from([0, 0, 0x40, 0x40, 0x20]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(compressed_frame, max_size=10),
    cuts_strategy,
    st.one_of(st.none(), st.integers(0, 2**63 - 1)),
)
def test_compressed_soup_never_escapes(
    frames: list[tuple[int, bytes, bool, int]],
    cuts: list[int],
    lie: int | None,
) -> None:
    """With permessage-deflate, whatever arrives (including headers announcing
    huge lengths): events or one clean failure, and bounded buffering."""
    data = soup(frames)
    if lie is not None:  # a compressed frame announcing any length at all
        data += bytes([0xC2, 0x7F]) + lie.to_bytes(8, "big") + b"\x00" * 10
    events = run(
        chunked(data, cuts),
        extensions=deflate_extensions,
        bound=MAX_SIZE + DEFLATE_SLACK + HEADER,
    )
    assert events == run([data], extensions=deflate_extensions)


# -- valid streams ------------------------------------------------------------------


@st.composite
def valid_stream(draw: st.DrawFn) -> tuple[bytes, list[str | bytes], list[bytes]]:
    """A server's stream of whole messages, some fragmented, with pings between."""
    data = b""
    messages: list[str | bytes] = []
    pings: list[bytes] = []
    for _ in range(draw(st.integers(0, 5))):
        is_text = draw(st.booleans())
        message: str | bytes
        message = draw(st.text(max_size=300)) if is_text else draw(st.binary(max_size=300))
        encoded = message.encode() if isinstance(message, str) else message
        cuts = sorted(draw(st.lists(st.integers(0, len(encoded)), max_size=4)))
        parts = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True)]
        for index, part in enumerate(parts):
            opcode = (0x1 if is_text else 0x2) if index == 0 else 0x0
            data += frame_bytes(opcode, part, fin=index == len(parts) - 1)
            if draw(st.booleans()):
                ping = draw(st.binary(max_size=125))
                pings.append(ping)
                data += frame_bytes(0x9, ping)
        messages.append(message)
    return data, messages, pings


@settings(max_examples=200)
@given(valid_stream(), cuts_strategy)
def test_valid_streams_parse_exactly(
    stream: tuple[bytes, list[str | bytes], list[bytes]], cuts: list[int]
) -> None:
    data, messages, pings = stream
    events = run(chunked(data, cuts), max_size=None)
    assert not any(event[0] == "failure" for event in events)
    assert [event[1] for event in events if event[0] == "ping"] == pings
    assert messages_of([event for event in events if event[0] != "ping"]) == messages


# -- serialize, then parse ------------------------------------------------------------------


def as_server_sees(data: bytes) -> bytes:
    """The client's masked frames, unmasked and re-serialized as a server would
    send them, so that a ClientProtocol can parse them."""
    return b"".join(
        bytes([header[0], header[1] & 0x7F]) + header[2:] + payload
        for header, payload in split_client_frames(data)
    )


sizes = st.sampled_from([0, 1, 125, 126, 127, 1000, 65535, 65536, 70000])
window_bits = st.sampled_from([8, 9, 10, 11, 12, 13, 14, 15])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(sizes, st.booleans(), st.integers(min_value=1, max_value=4)), max_size=4),
    st.one_of(st.none(), st.tuples(window_bits, st.booleans())),
    cuts_strategy,
    st.randoms(use_true_random=False),
)
def test_serialize_then_parse_round_trip(
    messages: list[tuple[int, bool, int]],
    compression: tuple[int, bool] | None,
    cuts: list[int],
    rng: random.Random,
) -> None:
    def extensions() -> list[PerMessageDeflate]:
        if compression is None:
            return []
        bits, no_context_takeover = compression
        return [PerMessageDeflate(no_context_takeover, no_context_takeover, bits, bits)]

    sender = ClientProtocol(max_size=None, extensions=extensions())
    wire = b""
    expected: list[str | bytes] = []
    for size, is_text, pieces in messages:
        if is_text:
            payload = "".join(rng.choice("aé€𝄞 {}") for _ in range(size)).encode()[:size]
            payload = payload.decode(errors="ignore").encode()
        else:
            payload = rng.randbytes(size)
        step = max(1, len(payload) // pieces)
        parts = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        for index, part in enumerate(parts):
            opcode = (OP_TEXT if is_text else OP_BINARY) if index == 0 else OP_CONT
            header, body = sender.send_data(opcode, part, fin=index == len(parts) - 1)
            assert header[1] & 0x80, "client frames are masked"
            wire += header + body
        expected.append(payload.decode() if is_text else payload)
    events = run(chunked(as_server_sees(wire), cuts), max_size=None, extensions=extensions)
    assert messages_of(events) == expected


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=70000), st.booleans(), st.booleans(), cuts_strategy)
def test_unmasked_serialization_parses_back(
    payload: bytes, fin_first: bool, text: bool, cuts: list[int]
) -> None:
    encoded = payload.decode(errors="replace").encode() if text else payload
    opcode = OP_TEXT if text else OP_BINARY
    if fin_first:
        data = serialize_frame(opcode, encoded, mask=False)
    else:
        half = len(encoded) // 2
        data = serialize_frame(opcode, encoded[:half], fin=False, mask=False)
        data += serialize_frame(OP_CONT, encoded[half:], mask=False)
    events = run(chunked(data, cuts), max_size=None)
    assert messages_of(events) == [encoded.decode() if text else encoded]
