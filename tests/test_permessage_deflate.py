"""permessage-deflate: RFC 7692 examples, negotiation, codec, bounded inflation,
and interoperability with the websockets package's own implementation."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate as TheirDeflate
from websockets.frames import Frame as TheirFrame
from websockets.frames import Opcode as TheirOpcode

from requests_ws.exceptions import NegotiationError, PayloadTooBig, ProtocolError
from requests_ws.extensions import ClientPerMessageDeflateFactory, PerMessageDeflate
from requests_ws.extensions.permessage_deflate import DEFAULT_COMPRESS_SETTINGS
from requests_ws.frames import OP_BINARY, OP_CONT, OP_TEXT, Frame


def ours(**params: object) -> PerMessageDeflate:
    defaults = {
        "remote_no_context_takeover": False,
        "local_no_context_takeover": False,
        "remote_max_window_bits": 15,
        "local_max_window_bits": 15,
    }
    defaults.update(params)
    return PerMessageDeflate(**defaults)  # type: ignore[arg-type]


def test_rfc_7692_examples() -> None:
    receiver = ours()
    hello = Frame(OP_TEXT, bytes.fromhex("f248cdc9c90700"), rsv1=True)
    assert receiver.decode(hello).data == b"Hello"
    # With context takeover, a second "Hello" refers back to the first.
    assert receiver.decode(Frame(OP_TEXT, bytes.fromhex("f200110000"), rsv1=True)).data == b"Hello"
    # A message made of an uncompressed (stored) block.
    stored = Frame(OP_TEXT, bytes.fromhex("0005 00fa ff48656c6c6f 00"), rsv1=True)
    assert ours().decode(stored).data == b"Hello"
    # Fragments of one compressed message.
    first = Frame(OP_TEXT, bytes.fromhex("f248cd"), fin=False, rsv1=True)
    second = Frame(OP_CONT, bytes.fromhex("c9c90700"))
    receiver = ours()
    assert receiver.decode(first).data + receiver.decode(second).data == b"Hello"


def test_compress_hello() -> None:
    sender = ours()
    frame = sender.encode(Frame(OP_TEXT, b"Hello"))
    assert frame.rsv1 and frame.data == bytes.fromhex("f248cdc9c90700")
    assert sender.encode(Frame(OP_TEXT, b"Hello")).data == bytes.fromhex("f200110000")


def test_uncompressed_messages_pass_through() -> None:
    receiver = ours()
    frame = Frame(OP_BINARY, b"raw")
    assert receiver.decode(frame) is frame
    assert receiver.decode(Frame(OP_CONT, b"more")).data == b"more"


def test_rsv1_on_continuation_is_a_protocol_error() -> None:
    receiver = ours()
    receiver.decode(Frame(OP_TEXT, bytes.fromhex("f248cd"), fin=False, rsv1=True))
    with pytest.raises(ProtocolError, match="continuation"):
        receiver.decode(Frame(OP_CONT, b"\x00", rsv1=True))


def test_corrupt_data_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="invalid compressed data"):
        ours().decode(Frame(OP_TEXT, b"\xff\xff\xff", rsv1=True))


def test_decompression_bomb_stops_at_max_size() -> None:
    compressor = zlib.compressobj(wbits=-15)
    bomb = compressor.compress(b"\0" * (200 * 2**20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooBig):
            ours().decode(Frame(OP_BINARY, bomb[:-4], rsv1=True), max_size=2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20 + 2 * len(bomb)


@pytest.mark.parametrize("bits", range(8, 16))
@pytest.mark.parametrize("no_context_takeover", [False, True])
def test_interop_with_websockets(bits: int, no_context_takeover: bool) -> None:
    # Their server compresses with `bits`; our client decompresses, and back.
    server_bits = max(bits, 9)
    theirs = TheirDeflate(no_context_takeover, no_context_takeover, server_bits, server_bits)
    mine = ours(
        remote_no_context_takeover=no_context_takeover,
        local_no_context_takeover=no_context_takeover,
        remote_max_window_bits=bits,
        local_max_window_bits=server_bits,
    )
    for message in [b"", b"Hello", os.urandom(3000), b"abc" * 5000]:
        sent = theirs.encode(TheirFrame(TheirOpcode.BINARY, message))
        received = mine.decode(Frame(OP_BINARY, bytes(sent.data), rsv1=sent.rsv1))
        assert received.data == message
        mine_frame = mine.encode(Frame(OP_BINARY, message))
        back = theirs.decode(TheirFrame(TheirOpcode.BINARY, mine_frame.data, rsv1=mine_frame.rsv1))
        assert back.data == message


def test_window_bits_8_sends_uncompressed() -> None:
    sender = ours(local_max_window_bits=8)
    frame = sender.encode(Frame(OP_TEXT, b"Hello"))
    assert not frame.rsv1 and frame.data == b"Hello"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.binary(max_size=300), min_size=1, max_size=4), min_size=1, max_size=6),
    st.booleans(),
    st.integers(min_value=9, max_value=15),
)
def test_round_trip_fragmented(
    messages: list[list[bytes]], no_context_takeover: bool, bits: int
) -> None:
    sender = ours(local_no_context_takeover=no_context_takeover, local_max_window_bits=bits)
    receiver = ours(remote_no_context_takeover=no_context_takeover, remote_max_window_bits=bits)
    for fragments in messages:
        out = []
        for i, fragment in enumerate(fragments):
            opcode = OP_BINARY if i == 0 else OP_CONT
            frame = sender.encode(Frame(opcode, fragment, fin=i == len(fragments) - 1))
            out.append(receiver.decode(frame).data)
        assert b"".join(out) == b"".join(fragments)


def test_offer_parameters() -> None:
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=12,
    )
    assert factory.get_request_params() == [
        ("server_no_context_takeover", None),
        ("client_no_context_takeover", None),
        ("server_max_window_bits", "10"),
        ("client_max_window_bits", "12"),
    ]
    assert ClientPerMessageDeflateFactory(client_max_window_bits=None).get_request_params() == []


def test_compress_settings_defaults_and_overrides() -> None:
    """level 3 and memLevel 5 unless compress_settings says otherwise (README,
    "Compression settings"); the factory's own settings are kept as given."""
    assert ours().compress_settings == {"level": 3, "memLevel": 5}
    assert DEFAULT_COMPRESS_SETTINGS == {"level": 3, "memLevel": 5}
    factory = ClientPerMessageDeflateFactory(compress_settings={"level": 9})
    assert factory.compress_settings == {"level": 9}
    extension = factory.process_response_params([], [])
    assert extension.compress_settings == {"level": 9, "memLevel": 5}
    # The settings reach zlib: level 0 stores the message (a stored block).
    stored = ours(compress_settings={"level": 0}).encode(Frame(OP_TEXT, b"Hello"))
    assert stored.data == bytes.fromhex("000500faff48656c6c6f00")
    assert ours().decode(Frame(OP_TEXT, stored.data, rsv1=True)).data == b"Hello"


def test_large_frames_are_inflated_without_joining_the_tail() -> None:
    """Frames from 8 KiB up are inflated in two calls (no copy to append the
    tail); the result and the max_size bound are the same."""
    payload = os.urandom(20_000) + b"a" * 100_000
    compressor = zlib.compressobj(wbits=-15)
    body = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(body) > 8192
    assert ours().decode(Frame(OP_BINARY, body, rsv1=True)).data == payload
    frame = Frame(OP_BINARY, body, rsv1=True)
    assert ours().decode(frame, max_size=len(payload)).data == payload
    with pytest.raises(PayloadTooBig):
        ours().decode(frame, max_size=len(payload) - 1)
    first, rest = body[:5000], body[5000:]
    receiver = ours()
    head = receiver.decode(Frame(OP_BINARY, first, fin=False, rsv1=True), max_size=len(payload))
    tail = receiver.decode(Frame(OP_CONT, rest), max_size=len(payload) - len(head.data))
    assert head.data + tail.data == payload


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 16},
        {"client_max_window_bits": False},
        {"compress_settings": {"wbits": 10}},
    ],
)
def test_bad_factory_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClientPerMessageDeflateFactory(**kwargs)  # type: ignore[arg-type]


def test_accepted_answers() -> None:
    factory = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    ext = factory.process_response_params(
        [("server_no_context_takeover", None), ("client_max_window_bits", "9")], []
    )
    assert ext.remote_no_context_takeover and ext.local_max_window_bits == 9
    ext = factory.process_response_params([("client_no_context_takeover", None)], [])
    assert ext.local_no_context_takeover


@pytest.mark.parametrize(
    ("factory_kwargs", "params", "words"),
    [
        ({}, [("unknown", None)], "invalid parameter name"),
        ({}, [("server_no_context_takeover", None)] * 2, "duplicate parameter"),
        ({}, [("server_no_context_takeover", "1")], "takes no value"),
        ({}, [("server_max_window_bits", "7")], "out of range"),
        ({}, [("server_max_window_bits", "16")], "out of range"),
        ({}, [("server_max_window_bits", "010")], "value for parameter"),
        ({}, [("server_max_window_bits", None)], "value for parameter"),
        ({"server_max_window_bits": 10}, [("server_max_window_bits", "12")], "at most 10"),
        ({"server_max_window_bits": 10}, [], "does not include"),
        ({"server_no_context_takeover": True}, [], "does not include"),
        ({"client_max_window_bits": None}, [("client_max_window_bits", "10")], "did not offer"),
        ({"client_max_window_bits": 10}, [("client_max_window_bits", "11")], "at most 10"),
        ({}, [("client_max_window_bits", None)], "value for parameter"),
    ],
)
def test_rejected_answers(
    factory_kwargs: dict[str, object], params: list[tuple[str, str | None]], words: str
) -> None:
    factory = ClientPerMessageDeflateFactory(**factory_kwargs)  # type: ignore[arg-type]
    with pytest.raises(NegotiationError, match=words):
        factory.process_response_params(params, [])
