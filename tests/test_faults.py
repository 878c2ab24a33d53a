"""The connection under faults, against real peers over real sockets.

Each test reproduces a finding of issue 8 (a hostile peer, an interrupt, a
timeout, two threads) and fails on the connection layer that had it. Races
are forced with hooks (a pausing lock, a parked protocol call), never sleeps.
"""

from __future__ import annotations

import collections
import os
import signal
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

import requests_ws
from requests_ws import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

from .peers.locks import WrappedLock
from .peers.raw_peer import RawPeer, frame_bytes

DEFLATE = {"Sec-WebSocket-Extensions": "permessage-deflate"}


def inflate_messages(peer: RawPeer, count: int, timeout: float = 10.0) -> list[bytes]:
    """Read ``count`` data messages from the client, inflating with context takeover."""
    inflater = zlib.decompressobj(-15)
    messages = []
    while len(messages) < count:
        frame = peer.recv_message(timeout)
        assert frame.fin
        if frame.rsv & 0x40:
            messages.append(inflater.decompress(frame.payload + b"\x00\x00\xff\xff"))
        else:
            messages.append(frame.payload)
    return messages


# -- data and framing -------------------------------------------------------------


def test_send_timeout_before_first_byte_keeps_compression_in_step(raw_server: Any) -> None:
    resume = threading.Event()
    received: list[bytes] = []
    count = {"sent": 0}

    def script(peer: RawPeer) -> None:
        resume.wait(30)
        received.extend(inflate_messages(peer, count["sent"] + 1, timeout=30))
        peer.send_close()
        peer.expect_close()

    server = raw_server(script, headers=DEFLATE)
    with requests_ws.connect(server.uri, compression="deflate") as ws:
        assert ws.protocol.extensions
        payloads = [os.urandom(1024) for _ in range(64)]
        for attempt in range(100_000):
            try:
                ws.send(payloads[attempt % 64], timeout=0.2)
            except TimeoutError:
                break
            count["sent"] += 1
        else:
            pytest.fail("the peer's buffers never filled")
        assert not ws.closed and ws.state is requests_ws.connection.State.OPEN
        resume.set()
        ws.send(b"after the timeout", timeout=30)
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=30)
    server.done.wait(10)
    server.check()
    assert received[-1] == b"after the timeout"
    assert received[:-1] == [payloads[i % 64] for i in range(count["sent"])]


def test_fragments_go_out_as_the_iterable_yields_them(raw_server: Any) -> None:
    first_arrived = threading.Event()
    frames: list[Any] = []

    def script(peer: RawPeer) -> None:
        frames.append(peer.recv_frame())
        first_arrived.set()
        frames.append(peer.recv_frame())
        frames.append(peer.recv_frame())
        peer.send_close()
        peer.expect_close()

    def chunks() -> Iterator[bytes]:
        yield b"first"
        # Yielded only once the server has the first fragment.
        assert first_arrived.wait(5), "the first fragment waited for the next one"
        yield b"second"

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None) as ws:
        ws.send(chunks())
    server.done.wait(10)
    server.check()
    assert [(f.opcode, f.fin, f.payload) for f in frames] == [
        (0x2, False, b"first"),
        (0x0, False, b"second"),
        (0x0, True, b""),
    ]


def test_timeout_inside_a_fragmented_send_fails_the_connection(raw_server: Any) -> None:
    release = threading.Event()

    def script(peer: RawPeer) -> None:
        release.wait(30)
        try:
            peer.expect_close(timeout=30)
        except EOFError:
            pass  # the close frame could not be written: the connection was dropped

    def endless() -> Iterator[bytes]:
        block = os.urandom(4096)
        while True:
            yield block

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=1)
    try:
        with pytest.raises(TimeoutError):
            ws.send(endless(), timeout=0.5)
        with pytest.raises(ConnectionClosedError):
            ws.send("next")
    finally:
        release.set()
        ws.close()
    assert ws.closed


def test_exception_from_the_iterable_fails_with_1011(raw_server: Any) -> None:
    codes: list[Any] = []

    def script(peer: RawPeer) -> None:
        peer.recv_frame()
        codes.append(peer.expect_close())
        peer.send_close(1011)

    def broken() -> Iterator[str]:
        yield "part"
        raise ValueError("the producer failed")

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    with pytest.raises(ValueError, match="producer failed"):
        ws.send(broken())
    with pytest.raises(ConnectionClosedError) as info:
        ws.send("next")
    assert info.value.sent is not None and info.value.sent.code == 1011
    ws.close()
    server.done.wait(10)
    assert codes and codes[0][0] == 1011


def test_keyboard_interrupt_in_a_large_send_fails_the_connection(raw_server: Any) -> None:
    received = {"bytes": 0, "frames_after": 0}
    enough = threading.Event()

    def script(peer: RawPeer) -> None:
        peer.sock.settimeout(10)
        header = peer._read(10, 10)
        (length,) = struct.unpack("!Q", header[2:10])
        got = 0
        try:
            while True:
                chunk = peer.sock.recv(65536)
                if not chunk:
                    break
                got += len(chunk)
                if got > 4 * 2**20:
                    enough.set()
                    time.sleep(0.001)  # a slow reader, so the send blocks
        except OSError:
            pass
        received["bytes"] = got
        # The client must not have started a new frame after the cut one.
        received["frames_after"] = int(got > length + 4)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    main = threading.get_ident()

    def interrupt() -> None:
        if enough.wait(20):
            signal.pthread_kill(main, signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ws.send(b"\x00" * (64 * 2**20))
    finally:
        killer.join()
    with pytest.raises(ConnectionClosedError):
        ws.send("next")
    ws.close()
    server.done.wait(10)
    assert 0 < received["bytes"] < 64 * 2**20
    assert received["frames_after"] == 0


class _InterruptedAfterPop(collections.deque):  # type: ignore[type-arg]
    """The queue's deque, interrupted once just after a popleft() returned:
    where CPython checks for a signal after a call."""

    interrupt = True

    def popleft(self) -> Any:
        item = super().popleft()
        if self.interrupt:
            self.interrupt = False
            raise KeyboardInterrupt
        return item


def test_interrupt_as_recv_takes_a_queued_message_keeps_the_queue_consistent(
    raw_server: Any,
) -> None:
    def script(peer: RawPeer) -> None:
        for text in (b"one", b"two", b"three"):
            peer.send_frame(0x1, text)
        peer.send_close()
        peer.expect_close(timeout=10)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None)
    queue = ws._queue
    deadline = time.monotonic() + 10
    while queue.terminal is None:  # the background thread queues all three
        assert time.monotonic() < deadline, "the messages were never queued"
        time.sleep(0.01)
    queue._items = _InterruptedAfterPop(queue._items)
    with pytest.raises(KeyboardInterrupt):
        ws.recv()
    # "one" went with the interrupt; the count did not stay behind.
    assert (ws.recv(timeout=5), ws.recv(timeout=5)) == ("two", "three")
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=5)
    server.done.wait(10)
    server.check()


def test_close_during_a_fragmented_send_fails_at_once_with_1011(raw_server: Any) -> None:
    yielded = threading.Event()
    release = threading.Event()
    seen: list[Any] = []

    def script(peer: RawPeer) -> None:
        seen.append(peer.recv_frame())
        seen.append(peer.expect_close())
        peer.send_close(1011)

    def chunks() -> Iterator[str]:
        yield "begun"
        yielded.set()
        release.wait(10)
        yield "never sent"

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=5)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            ws.send(chunks())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    assert yielded.wait(5)
    started = time.monotonic()
    ws.close()
    elapsed = time.monotonic() - started
    release.set()
    thread.join(10)
    assert elapsed < 2, f"close() took {elapsed:.1f} s"
    assert seen[1][0] == 1011
    # Failing the connection stops processing the peer's data (RFC 6455 7.1.7).
    assert ws.closed
    assert errors and isinstance(errors[0], ConnectionClosedError)
    assert "1000" not in str(errors[0])


# -- limits against a hostile server -------------------------------------------------


@pytest.mark.parametrize("length", [2**63 - 1, 400_000_000])
def test_rsv1_header_claiming_a_huge_length(raw_server: Any, length: int) -> None:
    codes: list[Any] = []

    def script(peer: RawPeer) -> None:
        peer.send_raw(struct.pack("!BBQ", 0xC2, 127, length) + b"\x00" * 16)
        codes.append(peer.expect_close())

    server = raw_server(script, headers=DEFLATE)
    tracemalloc.start()
    try:
        ws = requests_ws.connect(server.uri, max_size=2**20)
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ws.close()
    server.done.wait(10)
    assert isinstance(info.value.__cause__, requests_ws.PayloadTooBig)
    assert codes == [(1009, codes[0][1])]
    assert peak < 16 * 2**20


def test_a_million_one_byte_fragments_cost_about_the_message(raw_server: Any) -> None:
    count = 200_000

    def script(peer: RawPeer) -> None:
        frame = frame_bytes(0x0, b"x", fin=False)
        peer.send_raw(frame_bytes(0x2, b"x", fin=False))
        batch = frame * 10_000
        for _ in range((count - 2) // 10_000):
            peer.send_raw(batch)
        peer.send_raw(frame * ((count - 2) % 10_000))
        peer.send_raw(frame_bytes(0x0, b"x"))
        peer.expect_close(timeout=60)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    tracemalloc.start()
    try:
        message = ws.recv(timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ws.close()
    assert message == b"x" * count
    # The old layer kept an object per frame (about 200 bytes each).
    assert peak < 20 * count, f"peak {peak} bytes for a {count}-byte message"


def test_endless_empty_fragments_fail(raw_server: Any) -> None:
    stop = threading.Event()

    def script(peer: RawPeer) -> None:
        peer.send_raw(frame_bytes(0x2, b"", fin=False))
        batch = frame_bytes(0x0, b"", fin=False) * 5_000
        try:
            while not stop.is_set():
                peer.send_raw(batch)
        except OSError:
            return

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_size=50_000)
    try:
        with pytest.raises(ConnectionClosedError) as info:
            ws.recv(timeout=30)
    finally:
        stop.set()
        ws.close()
    assert isinstance(info.value.__cause__, requests_ws.PayloadTooBig)
    assert info.value.sent is not None and info.value.sent.code == 1009


def test_ping_flood_during_a_blocked_send_owes_one_pong(raw_server: Any) -> None:
    flooded = threading.Event()
    pongs = {"count": 0, "data": 0}

    def script(peer: RawPeer) -> None:
        ping = frame_bytes(0x9, b"p")
        for _ in range(20):
            peer.send_raw(ping * 5_000)
        flooded.set()
        peer.sock.settimeout(20)
        while True:
            frame = peer.recv_frame(20)
            if frame.opcode == 0xA:
                pongs["count"] += 1
            elif frame.opcode == 0x2:
                pongs["data"] += 1
                if frame.fin and pongs["data"] == 1:
                    break
        peer.send_close()
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)

    tracemalloc.start()
    try:
        # The peer floods pings before it reads anything: the send blocks meanwhile.
        ws.send(os.urandom(8 * 2**20), timeout=30)
        assert flooded.is_set()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=20)
    server.done.wait(10)
    server.check()
    assert pongs["count"] < 1_000, f"{pongs['count']} pongs for 100,000 pings"
    assert peak < 48 * 2**20  # the 8 MiB message, its masked copy, buffers


def test_recv_timeout_holds_against_a_non_reading_ping_flood(raw_server: Any) -> None:
    stop = threading.Event()

    def script(peer: RawPeer) -> None:
        ping = frame_bytes(0x9, b"flood") * 2_000
        peer.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                peer.sock.sendall(ping)
            except TimeoutError:
                continue
            except OSError:
                return

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=0.5)
    try:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                ws.recv(timeout=1)
            elapsed = time.monotonic() - started
            assert elapsed < 1.3, f"recv(timeout=1) took {elapsed:.2f} s"
    finally:
        stop.set()
        ws.close()


# -- threads and closing ------------------------------------------------------------


class PausingLock(WrappedLock):
    """A Lock whose release() parks the releasing thread once, when armed."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.parked = threading.Event()
        self.resume = threading.Event()

    def release(self) -> None:
        if self.armed:
            self.armed = False
            self.parked.set()
            self.resume.wait(10)
        self._lock.release()


def test_a_pong_owed_while_the_frame_lock_is_released_goes_out(raw_server: Any) -> None:
    got_pong = threading.Event()

    def script(peer: RawPeer) -> None:
        assert peer.recv_message().payload == b"data"
        peer.send_frame(0x9, b"late ping")
        while True:
            frame = peer.recv_frame(10)
            if frame.opcode == 0xA and frame.payload == b"late ping":
                got_pong.set()
                break
        peer.send_close()
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    lock = PausingLock()
    ws._writer.frame_lock = lock  # type: ignore[assignment]
    lock.armed = True
    sender = threading.Thread(target=ws.send, args=(b"data",))
    sender.start()
    # The sender has checked the owed slot and is about to release the lock:
    assert lock.parked.wait(5)
    # The background thread reads the ping meanwhile and owes its pong.
    deadline = time.monotonic() + 5
    while 0xA not in ws._writer.owed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert 0xA in ws._writer.owed
    lock.resume.set()
    sender.join(5)
    assert got_pong.wait(5), "the owed pong was left behind"
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=10)


def test_one_close_frame_when_two_threads_answer_the_server(raw_server: Any) -> None:
    frames: list[int] = []
    close_sent = threading.Event()
    hooked = threading.Event()

    def script(peer: RawPeer) -> None:
        assert hooked.wait(5)
        peer.send_close(1000, "bye")
        close_sent.set()
        peer.sock.settimeout(3)
        try:
            while True:
                frames.append(peer.recv_frame(3).opcode)
        except (OSError, EOFError):
            pass

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=2)
    protocol = ws.protocol
    original = protocol.send_close
    parked = threading.Event()
    resume = threading.Event()

    def parked_send_close(code: int = 1000, reason: str = "") -> bytes:
        if threading.current_thread().name.startswith("requests_ws-"):
            parked.set()
            resume.wait(5)
        return original(code, reason)

    protocol.send_close = parked_send_close  # type: ignore[method-assign]
    hooked.set()
    assert close_sent.wait(5)
    # The background thread answers the close and is parked inside the
    # protocol; the application's close() runs meanwhile.
    assert parked.wait(5)
    closer = threading.Thread(target=ws.close)
    closer.start()
    # close() cannot get past the state lock the parked thread holds.
    closer.join(0.2)
    assert closer.is_alive()
    resume.set()
    closer.join(5)
    server.done.wait(10)
    assert frames.count(0x8) == 1, frames
    assert ws.close_code == 1000


def test_close_is_answered_at_once_when_nothing_is_queued(raw_server: Any) -> None:
    timing: list[float] = []

    def script(peer: RawPeer) -> None:
        started = time.monotonic()
        peer.send_close(1001, "going")
        code = peer.expect_close()
        timing.append(time.monotonic() - started)
        assert code == (1001, "going")

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    server.done.wait(10)
    server.check()
    assert timing and timing[0] < 0.5, timing
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=5)
    assert ws.close_code == 1001 and ws.close_reason == "going"


def test_close_behind_queued_messages_waits_for_the_application(raw_server: Any) -> None:
    timing: list[float] = []

    def script(peer: RawPeer) -> None:
        peer.send_frame(0x1, b"one")
        peer.send_frame(0x1, b"two")
        started = time.monotonic()
        peer.send_close()
        peer.expect_close(timeout=10)
        timing.append(time.monotonic() - started)

    server = raw_server(script)
    # max_queue=2: two messages fill the queue; the close frame and the end
    # of stream are still read.
    ws = requests_ws.connect(server.uri, compression=None, max_queue=(2, 0), close_timeout=0.6)
    server.done.wait(10)
    deadline = time.monotonic() + 5
    while not ws.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ws.closed, "the end of stream was never read"
    assert 0.5 < timing[0] < 2
    assert ws.recv() == "one" and ws.recv() == "two"
    with pytest.raises(ConnectionClosedOK):
        ws.recv()


def test_close_timeout_zero_does_not_wait(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.recv_frame(5)
        time.sleep(1)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=0)
    started = time.monotonic()
    ws.close()
    assert time.monotonic() - started < 0.2
    assert ws.closed


def test_ping_raises_when_the_connection_ends_before_its_pong(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        assert peer.recv_frame().opcode == 0x9
        peer.send_close(1000)
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        ws.ping(timeout=5)
    assert time.monotonic() - started < 2
    server.done.wait(10)
    server.check()


def test_ping_raises_on_a_drop_and_pong_raises_after_it(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        assert peer.recv_frame().opcode == 0x9

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None)
    with pytest.raises(ConnectionClosedError):
        ws.ping(timeout=5)
    with pytest.raises(ConnectionClosed):
        ws.pong(b"after")
    with pytest.raises(ConnectionClosed):
        ws.send("after")


def test_ping_updates_latency(ws_server: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        assert ws.latency == 0
        rtt = ws.ping(timeout=5)
        assert rtt > 0 and ws.latency == rtt


@pytest.mark.parametrize("data", [[], 5, None])
def test_ping_and_pong_reject_other_types(ws_server: Any, data: Any) -> None:
    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        with pytest.raises(TypeError):
            ws.ping(data)
        with pytest.raises(TypeError):
            ws.pong(data)


def test_logger_is_an_adapter_carrying_the_connection(ws_server: Any) -> None:
    import logging

    server = ws_server()
    with requests_ws.connect(server.uri) as ws:
        assert isinstance(ws.logger, logging.LoggerAdapter)
        assert ws.logger.extra is not None and ws.logger.extra["websocket"] is ws


# -- TLS inside TLS from several threads ------------------------------------------------


def _hammer(ws: requests_ws.ClientConnection, senders: int = 3, count: int = 300) -> None:
    expected = {f"{sender}:{i}" for sender in range(senders) for i in range(count)}
    got: set[Any] = set()
    errors: list[BaseException] = []

    def send(sender: int) -> None:
        try:
            for i in range(count):
                ws.send(f"{sender}:{i}")
                if i % 50 == 0:
                    ws.pong(b"hb")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    try:
        while len(got) < len(expected):
            got.add(ws.recv(timeout=20))
    finally:
        for thread in threads:
            thread.join(20)
    assert not errors, errors
    assert got == expected


def test_tls_inside_squid_https_proxy_from_many_threads(
    squid: Any, ws_server: Any, tls: Any
) -> None:
    server = ws_server(ssl_context=tls.server_context)
    proxy = f"https://localhost:{squid.tls}"
    with requests_ws.connect(server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        assert type(ws.socket).__name__ == "SSLTransport"
        _hammer(ws)


def test_tls_inside_stunnel_https_proxy_from_many_threads(
    stunnel_proxy: Any, ws_server: Any, tls: Any
) -> None:
    server = ws_server(ssl_context=tls.server_context)
    proxy = f"https://127.0.0.1:{stunnel_proxy.port}"
    with requests_ws.connect(server.uri, proxy=proxy, verify=tls.ca_path) as ws:
        _hammer(ws)


def test_background_never_blocks_behind_a_stuck_sender(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        # Never reads: the client's big send blocks. Then the server closes.
        time.sleep(0.3)
        peer.send_close(1001)
        time.sleep(3)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=0.5)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            ws.send(b"\x00" * (64 * 2**20))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=sender)
    started = time.monotonic()
    thread.start()
    thread.join(5)
    # The close frame is owed behind the stuck frame; close_timeout later the
    # background thread ends the connection, which unblocks the sender.
    assert not thread.is_alive(), "the sender stayed blocked"
    assert time.monotonic() - started < 3
    assert ws.closed
    assert errors and isinstance(errors[0], ConnectionClosed)


def test_reading_resumes_when_the_queue_drains(raw_server: Any) -> None:
    pong = threading.Event()
    paused = threading.Event()

    def script(peer: RawPeer) -> None:
        for i in range(5):
            peer.send_frame(0x1, f"m{i}".encode())
        assert paused.wait(5)
        peer.send_frame(0x9, b"after the burst")
        while True:
            frame = peer.recv_frame(10)
            if frame.opcode == 0xA:
                pong.set()
                break
        peer.send_close()
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_queue=(2, 2))
    deadline = time.monotonic() + 5
    while ws._queue.complete < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    # Paused above two messages: the ping that comes next is not read.
    assert ws._queue.paused
    paused.set()
    assert not pong.wait(0.3)
    assert [ws.recv(timeout=0) for _ in range(3)] == ["m0", "m1", "m2"]
    # Drained: the background thread reads again without another recv().
    assert pong.wait(5), "reading stayed paused on a drained queue"
    assert [ws.recv(timeout=5) for _ in range(2)] == ["m3", "m4"]
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=5)


# -- found in review -------------------------------------------------------------------


def test_recv_deadline_holds_at_a_close_whose_tcp_stays_open(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        peer.send_close(1000)
        peer.expect_close()
        time.sleep(3)  # the server keeps TCP open past the client's deadline

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, close_timeout=5)
    started = time.monotonic()
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=0.5)
    assert time.monotonic() - started < 1.0
    ws.close_timeout = 0
    ws.close()


def test_a_waiting_ping_does_not_lift_flow_control(raw_server: Any) -> None:
    stop = threading.Event()

    def script(peer: RawPeer) -> None:
        batch = frame_bytes(0x2, b"m" * 100) * 1_000
        peer.sock.settimeout(0.2)
        while not stop.is_set():
            try:
                peer.sock.sendall(batch)
            except TimeoutError:
                continue
            except OSError:
                return

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, max_queue=16, close_timeout=0.5)
    try:
        deadline = time.monotonic() + 5
        while not ws._queue.paused and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws._queue.paused
        with pytest.raises(TimeoutError):
            ws.ping(timeout=1)
        # One read's worth at most beyond the mark, not everything the peer sent.
        assert len(ws._queue) < 2_000, len(ws._queue)
    finally:
        stop.set()
        ws.close()
    assert len(ws._queue) < 2_000, len(ws._queue)


def test_ping_that_cannot_begin_is_a_timeout_not_a_close(raw_server: Any) -> None:
    resume = threading.Event()

    def script(peer: RawPeer) -> None:
        resume.wait(30)

    server = raw_server(script, headers=DEFLATE)
    ws = requests_ws.connect(server.uri, compression="deflate", close_timeout=0.5)
    try:
        block = os.urandom(1024)
        for _ in range(100_000):
            try:
                ws.send(block, timeout=0.2)
            except TimeoutError:
                break
        assert not ws.closed
        with pytest.raises(TimeoutError) as info:
            ws.ping(timeout=0.3)
        assert not isinstance(info.value, ConnectionClosed)
        assert not ws.closed
    finally:
        resume.set()
        ws.close()


# -- pings in wire order, nothing after a cut frame ------------------------------------


class GatedLock(WrappedLock):
    """A Lock whose acquire() parks the thread named ``gated`` until ``gate`` is set."""

    def __init__(self, gated: str) -> None:
        super().__init__()
        self.gated = gated
        self.waiting = threading.Event()
        self.gate = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if threading.current_thread().name == self.gated and not self.gate.is_set():
            self.waiting.set()
            assert self.gate.wait(10)
        return self._lock.acquire(blocking, timeout)


def _parked_ping(
    ws: requests_ws.ClientConnection, payload: bytes, outcome: dict[str, Any]
) -> tuple[threading.Thread, GatedLock]:
    """Start ``ws.ping(payload)`` in a thread parked just before the frame lock."""
    lock = GatedLock("parked-ping")
    ws._writer.frame_lock = lock  # type: ignore[assignment]

    def run() -> None:
        try:
            outcome["latency"] = ws.ping(payload, timeout=10)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="parked-ping")
    thread.start()
    assert lock.waiting.wait(5)
    return thread, lock


@pytest.mark.parametrize(
    "payloads", [(b"parked", b"written first"), (b"", b"")], ids=["explicit", "random"]
)
def test_a_pong_acknowledges_only_pings_written_before_it(
    raw_server: Any, payloads: tuple[bytes, bytes]
) -> None:
    seen: list[bytes] = []

    def script(peer: RawPeer) -> None:
        first = peer.recv_frame(10)
        assert first.opcode == 0x9
        seen.append(first.payload)
        peer.send_frame(0xA, first.payload)
        second = peer.recv_frame(10)
        assert second.opcode == 0x9
        seen.append(second.payload)
        # The parked ping is never answered: the connection ends instead.
        peer.send_close(1000)
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None)
    outcome: dict[str, Any] = {}
    # ping() #1 is parked before it can write; ping() #2 goes out and is answered.
    thread, lock = _parked_ping(ws, payloads[0], outcome)
    assert ws.ping(payloads[1], timeout=10) > 0
    lock.gate.set()
    thread.join(10)
    assert not thread.is_alive()
    # #2's pong came before #1 was on the wire: it cannot acknowledge #1.
    assert "latency" not in outcome, f"acknowledged by another ping's pong: {seen}"
    assert isinstance(outcome["error"], ConnectionClosed)
    assert len(seen) == 2 and seen[0] != seen[1]
    ws.close()
    server.done.wait(10)
    server.check()


def test_a_late_pong_does_not_answer_a_ping_not_yet_written(raw_server: Any) -> None:
    retry_parked = threading.Event()

    def script(peer: RawPeer) -> None:
        first = peer.recv_frame(10)
        assert (first.opcode, first.payload) == (0x9, b"same")
        assert retry_parked.wait(10)
        # The answer to the first ping, late: the second is not on the wire yet.
        peer.send_frame(0xA, b"same")
        peer.send_frame(0x1, b"after the late pong")
        second = peer.recv_frame(10)
        assert (second.opcode, second.payload) == (0x9, b"same")
        peer.send_close(1000)
        peer.expect_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None)
    with pytest.raises(TimeoutError):
        ws.ping(b"same", timeout=0.2)
    outcome: dict[str, Any] = {}
    thread, lock = _parked_ping(ws, b"same", outcome)
    retry_parked.set()
    # The late pong, queued before this message, has been read.
    assert ws.recv(timeout=10) == "after the late pong"
    lock.gate.set()
    # The server closes once it has the second ping; reaching it ends the ping.
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=10)
    thread.join(10)
    assert not thread.is_alive()
    assert "latency" not in outcome, "a pong read before the ping was written answered it"
    assert isinstance(outcome["error"], ConnectionClosed)
    ws.close()
    server.done.wait(10)
    server.check()


class CuttingStream:
    """The connection's socket, as its writer sees it: the first send() writes
    ``part`` bytes for real, the second is interrupted (as by Ctrl-C) once
    ``ready()`` holds; later calls pass through."""

    def __init__(self, sock: Any, part: int, ready: Any) -> None:
        self._sock = sock
        self._part = part
        self._ready = ready
        self.calls = 0

    def send(self, data: Any) -> int:
        self.calls += 1
        if self.calls == 1:
            return int(self._sock.send(data[: self._part]))
        if self.calls == 2:
            deadline = time.monotonic() + 5
            while not self._ready() and time.monotonic() < deadline:
                time.sleep(0.01)
            raise KeyboardInterrupt
        return int(self._sock.send(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_nothing_is_written_after_a_cut_frame_when_on_cut_is_interrupted(
    raw_server: Any,
) -> None:
    part = 100
    received = bytearray()

    def script(peer: RawPeer) -> None:
        received.extend(peer._read(part, 10))
        # A ping while the client's frame is half-written: its pong is owed.
        peer.send_frame(0x9, b"owed during the cut")
        peer.sock.settimeout(10)
        try:
            while chunk := peer.sock.recv(65536):
                received.extend(chunk)
        except OSError:
            pass

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=0.5)
    writer = ws._writer
    writer.stream = CuttingStream(writer.stream, part, lambda: 0xA in writer.owed)
    original = writer.on_cut
    cuts: list[BaseException] = []

    def interrupted_on_cut(error: BaseException) -> None:
        cuts.append(error)
        if len(cuts) == 1:
            # A second Ctrl-C lands as the cut is being handled.
            raise KeyboardInterrupt
        original(error)

    writer.on_cut = interrupted_on_cut
    with pytest.raises(KeyboardInterrupt):
        ws.send(b"\x00" * 1000, timeout=10)
    ended_at_once = ws.closed
    ws.close()
    server.done.wait(10)
    server.check()
    # The partial frame and nothing after it: no pong, no close frame.
    assert len(received) == part, bytes(received[part:])
    assert ended_at_once
    with pytest.raises(ConnectionClosedError):
        ws.send("next")


def test_keepalive_latency_is_the_round_trip_not_the_reading_delay(
    raw_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nobody calls recv(): the background thread would wait _GRACE before reading.
    monkeypatch.setattr("requests_ws.connection._GRACE", 30.0)

    def script(peer: RawPeer) -> None:
        frame = peer.recv_frame(10)
        assert frame.opcode == 0x9
        peer.send_frame(0xA, frame.payload)
        peer.expect_close(10)

    server = raw_server(script)
    with requests_ws.connect(server.uri, compression=None, ping_interval=0.05) as ws:
        deadline = time.monotonic() + 10
        while ws.latency == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Read as it arrived, not _GRACE later.
        assert 0 < ws.latency < 5, ws.latency
    server.done.wait(10)
    server.check()


def test_an_owed_keepalive_joins_the_ping_table_only_on_the_wire(raw_server: Any) -> None:
    def script(peer: RawPeer) -> None:
        while True:
            frame = peer.recv_frame(30)
            if frame.opcode == 0x9:
                peer.send_frame(0xA, frame.payload)
            elif frame.opcode == 0x8:
                peer.send_close()
                return

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None)
    writer = ws._writer
    try:
        # Another frame is being written: the keepalive ping waits in the slot.
        writer.frame_lock.acquire()
        with ws._lock:
            ws.ping_interval = 0.05
            ws._next_keepalive = time.monotonic()
            ws._wake_background_locked()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with ws._lock:
                owed = 0x9 in writer.owed
                keepalive = ws._keepalive
                payload = getattr(keepalive, "payload", keepalive)
                in_table = keepalive is not None and payload in ws._pings
            if owed:
                break
            time.sleep(0.01)
        assert owed and keepalive is not None
        # Not on the wire, so not in the table: no pong can acknowledge it yet.
        assert not in_table
        writer.release_frame_lock(None)
        deadline = time.monotonic() + 10
        while ws.latency == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws.latency > 0
    finally:
        ws.close()
    server.done.wait(10)
    server.check()
