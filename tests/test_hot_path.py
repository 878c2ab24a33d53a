"""The connection's short cuts for the common case, against a real raw peer.

A whole small message read by ``recv()`` goes from the protocol to the
caller without the queue, and a one-frame message is sent with the frame lock
alone. Each test checks that the short cut gives way where it must: frames it
must not take (masked, non-minimal lengths, invalid UTF-8, fragments, several
frames in one read), and a fragmented message another thread is sending.
Large payloads are masked piece by piece as they are written and received in
place (buffers.py): exact both ways, and what is handed out never changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import requests_ws
from requests_ws import ConcurrencyError, ConnectionClosedError, buffers
from requests_ws.frames import MaskedPayload
from requests_ws.masking import apply_mask
from requests_ws.protocol import ClientProtocol

from .peers.locks import WrappedLock
from .peers.raw_peer import RawPeer, frame_bytes


class SignallingLock(WrappedLock):
    """A Lock that tells when the ``watched`` thread starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: int | None = None
        self.waiting = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if threading.get_ident() == self.watched:
            self.waiting.set()
        return self._lock.acquire(blocking, timeout)


def test_a_one_frame_message_waits_for_a_fragmented_one(raw_server: Any) -> None:
    frames: list[tuple[int, bool, bytes]] = []

    def script(peer: RawPeer) -> None:
        while len(frames) < 4:
            frame = peer.recv_frame(10)
            frames.append((frame.opcode, frame.fin, frame.payload))
        peer.send_close(1000)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    lock = SignallingLock()
    ws._writer.message_lock = lock  # type: ignore[assignment]
    first_out = threading.Event()
    go = threading.Event()

    def fragments() -> Iterator[str]:
        yield "a1"
        first_out.set()  # asked for the next piece: "a1" was written
        go.wait(10)
        yield "a2"

    fragmented = threading.Thread(target=ws.send, args=(fragments(),))
    fragmented.start()
    assert first_out.wait(10)

    def send_one() -> None:
        lock.watched = threading.get_ident()
        ws.send("b")

    single = threading.Thread(target=send_one)
    single.start()
    # The one-frame send found the fragmented message begun and waits for it.
    assert lock.waiting.wait(10)
    go.set()
    fragmented.join(10)
    single.join(10)
    server.done.wait(10)
    server.check()
    assert frames == [(0x1, False, b"a1"), (0x0, False, b"a2"), (0x0, True, b""), (0x1, True, b"b")]
    ws.close()


def test_whole_messages_and_the_frames_the_short_cut_leaves(raw_server: Any) -> None:
    big = b"y" * 70000

    def script(peer: RawPeer) -> None:
        assert peer.recv_message().payload == b"ready"
        peer.send_frame(0x1, "héllo".encode())  # 7-bit length, text
        peer.send_frame(0x2, b"\x00" * 300)  # 16-bit length, binary
        peer.send_frame(0x2, big)  # 64-bit length: the general path
        peer.send_raw(frame_bytes(0x1, b"one") + frame_bytes(0x1, b"two"))  # one read, two frames
        peer.send_frame(0x1, b"frag", fin=False)
        peer.send_frame(0x0, b"mented")
        peer.send_frame(0x1, b"")
        assert peer.recv_message().payload == b"done"
        peer.send_close(1000)
        peer.wait_eof()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_size=None)
    ws.send("ready")
    assert ws.recv() == "héllo"
    assert ws.recv() == b"\x00" * 300
    assert ws.recv() == big
    assert ws.recv() == "one"
    assert ws.recv() == "two"
    assert ws.recv() == "fragmented"
    assert ws.recv() == ""
    ws.send("done")
    ws.close()
    server.done.wait(10)
    server.check()


@pytest.mark.parametrize(
    ("raw", "max_size", "code"),
    [
        # A masked frame whose length byte, read as a length, would fill the read.
        (bytes([0x81, 0x85]) + b"\x00" * 4 + b"x" * 129, None, 1002),
        # A 16-bit length for a payload under 126 bytes.
        (bytes([0x82, 126, 0, 5]) + b"12345", None, 1002),
        # Invalid UTF-8 in a whole text frame.
        (bytes([0x81, 2]) + b"\xc3\x28", None, 1007),
        # Over max_size.
        (bytes([0x82, 120]) + b"z" * 120, 100, 1009),
    ],
)
def test_frames_the_short_cut_must_not_take_fail_the_connection(
    raw_server: Any, raw: bytes, max_size: int | None, code: int
) -> None:
    codes: list[int | None] = []

    def script(peer: RawPeer) -> None:
        # After the client's first message: not with the handshake's response.
        assert peer.recv_message().payload == b"ready"
        peer.send_raw(raw)
        codes.append(peer.expect_close()[0])
        peer.send_close(code)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_size=max_size)
    ws.send("ready")
    with pytest.raises(ConnectionClosedError):
        ws.recv()
    ws.close()
    server.done.wait(10)
    server.check()
    assert codes == [code]


def test_the_short_cut_is_logged_like_the_queue(
    raw_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def script(peer: RawPeer) -> None:
        assert peer.recv_message().payload == b"ready"
        peer.send_frame(0x1, b"logged")
        peer.send_close(1000)

    caplog.set_level(logging.DEBUG, logger="requests_ws.client")
    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    ws.send("ready")
    assert ws.recv() == "logged"
    ws.close()
    assert any("< TEXT 'logged' [6 chars]" in record.getMessage() for record in caplog.records)


def test_receive_message_returns_only_a_lone_whole_frame() -> None:
    protocol = ClientProtocol(max_size=None)
    assert protocol.receive_message(memoryview(frame_bytes(0x2, b"ab"))) == b"ab"
    assert protocol.events_received() == []
    # Two frames in one read: both become events, none is returned.
    assert protocol.receive_message(memoryview(frame_bytes(0x1, b"a") * 2)) is None
    assert [event.data for event in protocol.events_received()] == ["a", "a"]  # type: ignore[union-attr]
    # An incomplete frame is kept; the next read completes it through the buffer.
    head = frame_bytes(0x1, b"abc")
    assert protocol.receive_message(memoryview(head[:3])) is None
    assert protocol.receive_message(memoryview(head[3:])) is None
    assert [event.data for event in protocol.events_received()] == ["abc"]  # type: ignore[union-attr]


# -- large messages: masked piece by piece, received in place ------------------------


def test_large_messages_both_ways_are_exact(raw_server: Any) -> None:
    sizes = [65536, 262144 + 3, 5 * 2**20 + 1]
    payloads = [os.urandom(size) for size in sizes]

    def script(peer: RawPeer) -> None:
        for payload in payloads:
            got = peer.recv_message(20).payload
            assert got == payload, "the server unmasked another payload"
            peer.send_frame(0x2, got)
        peer.send_close(1000)
        peer.wait_eof()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_size=None)
    for payload in payloads:
        ws.send(payload)
        echoed = ws.recv(timeout=20)
        assert type(echoed) is bytes and echoed == payload
    ws.close()
    server.done.wait(20)
    server.check()


def test_masked_payload_pieces_keep_the_key_aligned() -> None:
    payload = os.urandom(1000)
    key = b"\x01\x02\x03\x04"
    whole = apply_mask(payload, key)
    assert b"".join(MaskedPayload(payload, key).pieces(12)) == whole
    assert len(MaskedPayload(payload, key)) == 1000


def test_payload_buffer_hands_out_bytes_that_never_change() -> None:
    view, owner = buffers.payload_buffer(8)
    view[:] = b"abcdefgh"
    late = view[2:4]  # a view still alive when the payload is taken
    payload = buffers.take_payload(view, owner)
    assert type(payload) is bytes and payload == b"abcdefgh"
    late[0] = ord("Z")  # writing through it cannot change what was handed out
    late.release()
    assert payload == b"abcdefgh"
    view, owner = buffers.payload_buffer(3)
    view[:] = b"xyz"
    assert buffers.take_payload(view, owner) == b"xyz"
    if buffers.ACCELERATED:
        with pytest.raises(BufferError):
            owner.take()  # once only
        with pytest.raises(ValueError):
            buffers.payload_buffer(-1)


def test_one_receiver_at_a_time(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        assert peer.recv_message().payload == b"ready"
        peer.send_frame(0x1, b"ab", fin=False)
        assert peer.recv_message().payload == b"go"
        peer.send_frame(0x0, b"cd")
        assert peer.recv_message().payload == b"again"
        peer.send_frame(0x1, b"last")
        peer.send_close(1000)
        peer.wait_eof()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    ws.send("ready")
    stream = ws.recv_streaming()
    assert next(stream) == "ab"
    with pytest.raises(ConcurrencyError):
        ws.recv(timeout=0)  # the stream holds the right to receive
    ws.send("go")
    assert list(stream) == ["cd"]
    got: list[str | bytes] = []
    reader = threading.Thread(target=lambda: got.append(ws.recv(timeout=10)))
    reader.start()
    for _ in range(1000):  # until the reader is inside recv()
        with ws._lock:
            if ws._receiving:
                break
        threading.Event().wait(0.005)
    with pytest.raises(ConcurrencyError):
        next(ws.recv_streaming())
    ws.send("again")
    reader.join(10)
    assert got == ["last"]
    ws.close()
    server.done.wait(10)
    server.check()
