"""Reproductions for the review of the hot-path changes (review_hot brief)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

import pytest

import requests_ws
from requests_ws import ConnectionClosedError, ConnectionClosedOK

from .peers.interrupts import (
    InterruptedAcquire,
    InterruptedRead,
    SignalAfterReacquire,
    signal_when_polling,
)
from .peers.raw_peer import RawPeer

# -- A: one-frame send through TLS inside TLS leaves the frame in user space ------------

MESSAGES = 1000


def test_small_send_through_tls_inside_tls_reaches_the_server(
    squid: Any, raw_server: Any, tls: Any
) -> None:
    """Every one-frame message send() returned from reaches the server once
    it reads again, although nothing more is sent: none is left behind as
    ciphertext in the inner TLS stream's buffer."""
    resume = threading.Event()
    done = threading.Event()
    sent = {"count": 0, "left_behind": 0}
    got: list[int] = []
    all_in = threading.Event()

    def script(peer: RawPeer) -> None:
        resume.wait(60)
        try:
            # All MESSAGES arrived, or the sender stopped early and everything it
            # sent arrived; a message the sender sends after this thread's last
            # read is then still counted (the sender may not have set done yet).
            while len(got) < MESSAGES and not (done.is_set() and len(got) >= sent["count"]):
                got.append(len(peer.recv_message(timeout=5).payload))
            all_in.set()
        except Exception:
            pass  # the missing message: the client's assertion says so
        peer.send_close()
        try:
            peer.expect_close(5)
        except Exception:
            pass

    server = raw_server(script, ssl_context=tls.server_context)
    proxy = f"https://localhost:{squid.tls}"
    ws = requests_ws.connect(
        server.uri, proxy=proxy, verify=tls.ca_path, compression=None, ping_interval=None
    )
    stream = ws._stream
    assert type(stream).__name__ == "TunnelledTLS"

    def sender() -> None:
        try:
            for _ in range(MESSAGES):  # 16 MB: more than the buffers on the way hold
                ws.send(b"x" * 16000)  # one frame: send()'s short cut
                sent["count"] += 1
                if stream._ciphertext:
                    # send() returned, part of its frame still in user space.
                    sent["left_behind"] = len(stream._ciphertext)
                    return
        finally:
            done.set()

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not stream._ciphertext and not done.is_set():
            assert time.monotonic() < deadline, "the outer socket never filled"
            time.sleep(0.01)  # waiting for a state, not forcing an order
        resume.set()
        thread.join(60)
        assert all_in.wait(10), (
            f"server got {len(got)} of {sent['count']} messages; send() had returned "
            f"with {sent['left_behind']} bytes of its frame still buffered as ciphertext"
        )
    finally:
        resume.set()
        thread.join(60)
        ws.close()


# -- C: an abandoned recv_streaming() finalized by the GC under the state lock ---------


class _CollectingHandler(logging.Handler):
    """A DEBUG handler that runs a garbage collection when armed, as any
    allocation may while a record is logged (the connection logs frames with
    its state lock held)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.armed = False
        self.collecting = threading.Event()
        self.collected = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.armed and record.getMessage().startswith("< "):
            self.armed = False
            self.collecting.set()
            gc.collect()
            self.collected.set()


def test_abandoned_recv_streaming_finalized_under_the_state_lock(raw_server: Any) -> None:
    go = threading.Event()

    def script(peer: RawPeer) -> None:
        peer.send_frame(0x1, b"first part", fin=False)
        go.wait(10)
        peer.send_frame(0x0, b" last part", fin=True)
        peer.send_frame(0x1, b"next message")
        peer.send_close()
        try:
            peer.expect_close(5)
        except Exception:
            pass

    logger = logging.getLogger("review-hot-gc")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = _CollectingHandler()
    logger.addHandler(handler)
    try:
        server = raw_server(script)
        ws = requests_ws.connect(server.uri, compression=None, logger=logger, close_timeout=1)
        streaming = ws.recv_streaming()
        assert next(streaming) == "first part"
        # The generator is abandoned inside a reference cycle (as a stored
        # exception's traceback makes one): only the cyclic GC finalizes it.
        cycle: list[Any] = [streaming]
        cycle.append(cycle)
        del streaming, cycle
        handler.armed = True
        go.set()  # the background thread reads the rest and logs it, lock held
        assert handler.collecting.wait(10)
        assert handler.collected.wait(10), (
            "the background thread deadlocked: the abandoned generator's finally "
            "block took the state lock inside a GC pass run while it held that lock"
        )
        assert ws.recv(timeout=5) == " last part"
        assert ws.recv(timeout=5) == "next message"
        ws.close()
    finally:
        logger.removeHandler(handler)


# -- B: a message taken by the short cut is lost to an interrupt after the read --------


class _InterruptingPool(list):  # type: ignore[type-arg]
    """The read-buffer pool; raises KeyboardInterrupt once, in one thread, when
    the reader hands its buffer back (after the message was parsed)."""

    thread: int | None = None

    def append(self, item: Any) -> None:
        if self.thread == threading.get_ident():
            self.thread = None
            raise KeyboardInterrupt
        super().append(item)


def test_interrupt_after_a_whole_message_was_read_keeps_it(
    raw_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from requests_ws import connection

    send_two = threading.Event()
    waiting = threading.Event()
    ready = threading.Event()

    def script(peer: RawPeer) -> None:
        ready.wait(10)
        assert waiting.wait(10)
        peer.send_frame(0x1, b"one")
        send_two.wait(10)
        peer.send_frame(0x1, b"two")
        peer.send_close()
        try:
            peer.expect_close(5)
        except Exception:
            pass

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None)
    pool = _InterruptingPool()
    monkeypatch.setattr(connection, "_READ_BUFFERS", pool)
    signal_when_polling(ws, waiting)
    outcome: dict[str, Any] = {}

    def first() -> None:
        pool.thread = threading.get_ident()
        try:
            outcome["first"] = ws.recv(timeout=10)
        except BaseException as exc:
            outcome["first"] = exc

    thread = threading.Thread(target=first)
    # Keep the background thread from reading first: it reads only when the
    # caller is away; the caller is in recv() below before the server sends.
    thread.start()
    ready.set()
    thread.join(10)
    assert isinstance(outcome.get("first"), KeyboardInterrupt), outcome
    send_two.set()
    assert ws.recv(timeout=10) == "one", "the message read before the interrupt was lost"
    assert ws.recv(timeout=10) == "two"
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=10)


# -- D: an interrupt just after lock.acquire() returns (before ``try:``) ---------------


class _SignalAfterAcquire:
    """The state lock as CPython runs it when a signal is pending: the handler
    runs right after a CALL returns, so ``lock.acquire()`` can raise with the
    lock held (the read path takes it inside the try that releases it)."""

    def __init__(self, real: threading.Lock) -> None:
        self.real = real
        self.thread: int | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        acquired = self.real.acquire(blocking, timeout)
        if acquired and self.thread == threading.get_ident():
            self.thread = None
            raise KeyboardInterrupt
        return acquired

    def release(self) -> None:
        self.real.release()

    def locked(self) -> bool:
        return self.real.locked()

    def __enter__(self) -> bool:
        return self.real.acquire()

    def __exit__(self, *args: Any) -> None:
        self.real.release()


def test_interrupt_right_after_the_read_path_takes_the_state_lock(raw_server: Any) -> None:
    waiting = threading.Event()

    def script(peer: RawPeer) -> None:
        waiting.wait(10)
        peer.send_frame(0x1, b"one")
        try:
            peer.expect_close(5)
        except Exception:
            pass
        peer.send_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    signal_when_polling(ws, waiting)
    lock = _SignalAfterAcquire(ws._lock)
    ws._lock = lock  # type: ignore[assignment]
    outcome: dict[str, Any] = {}

    def receive() -> None:
        lock.thread = threading.get_ident()
        try:
            outcome["first"] = ws.recv(timeout=5)
        except BaseException as exc:
            outcome["first"] = exc

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    thread.join(10)
    # Either the signal was taken at a point that releases the lock (the
    # interrupt surfaces) or it never fired: what must not happen is a hang.
    assert not thread.is_alive(), "recv() deadlocked on the state lock it still held"
    closer = threading.Thread(target=ws.close, daemon=True)
    closer.start()
    closer.join(10)
    assert not closer.is_alive(), "close() deadlocked on the leaked state lock"


# -- E: an interrupt as recv() takes the state lock back after reading -----------------


def test_interrupt_as_recv_takes_the_lock_back_leaves_the_read_role(raw_server: Any) -> None:
    waiting = threading.Event()
    send_two = threading.Event()

    def script(peer: RawPeer) -> None:
        waiting.wait(10)
        peer.send_frame(0x1, b"one")
        send_two.wait(10)
        peer.send_frame(0x1, b"two")
        peer.send_close()
        try:
            peer.expect_close(5)
        except Exception:
            pass

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    signal_when_polling(ws, waiting)
    outcome: list[Any] = []

    def receive() -> None:
        ws._cond = SignalAfterReacquire(ws._cond, threading.get_ident())  # type: ignore[assignment]
        for _ in range(3):
            try:
                outcome.append(ws.recv(timeout=5))
            except BaseException as exc:
                outcome.append(exc)
            send_two.set()

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), f"recv() hung: {outcome}"
    assert isinstance(outcome[0], KeyboardInterrupt), outcome
    # The message read before the interrupt is kept; the role was given up.
    assert outcome[1:] == ["one", "two"], outcome
    ws.close()
    assert ws.close_code == 1000


# -- F: an interrupt as recv_into() returns loses what it read ------------------------


def test_interrupt_as_a_read_returns_ends_the_connection(raw_server: Any) -> None:
    """The bytes that read took are gone with the interrupt: the connection
    ends (1006) rather than go on parsing the stream after a hole (here the
    whole message "one"; in general part of a frame)."""
    waiting = threading.Event()
    after: list[bytes] = []

    def script(peer: RawPeer) -> None:
        waiting.wait(10)
        peer.send_frame(0x1, b"one")
        peer.send_frame(0x1, b"two")
        peer.sock.settimeout(10)
        try:
            while chunk := peer.sock.recv(65536):
                after.append(chunk)
        except OSError:
            pass

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    signal_when_polling(ws, waiting)
    ws._stream = InterruptedRead(ws._stream, threading.get_ident())
    with pytest.raises(KeyboardInterrupt):
        ws.recv(timeout=5)
    with pytest.raises(ConnectionClosedError):
        ws.recv(timeout=5)
    ws.close()
    assert ws.close_code == 1006
    server.done.wait(10)
    assert after == [], "the client wrote after the read it lost"


# -- G: an interrupt as a send takes the message or frame lock ------------------------


@pytest.mark.parametrize("which", ["message_lock", "frame_lock"])
def test_interrupt_as_a_send_takes_its_lock_leaves_it_free(ws_server: Any, which: str) -> None:
    """Nothing was written: the lock is given back and the connection goes on
    (before, the lock stayed held: every later send timed out, close() too)."""
    server = ws_server()
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=5)
    lock = InterruptedAcquire(threading.get_ident())
    setattr(ws._writer, which, lock)
    with pytest.raises(KeyboardInterrupt):
        ws.send("lost to the interrupt", timeout=5)
    assert not lock._is_owned()
    ws.send("after", timeout=2)
    assert ws.recv(timeout=5) == "after"
    started = time.monotonic()
    ws.close()
    assert ws.close_code == 1000 and time.monotonic() - started < 2


def test_interrupt_as_the_reader_takes_the_frame_lock_for_a_pong(raw_server: Any) -> None:
    """recv() read a ping and takes the frame lock (without waiting) to write
    its pong: interrupted as that acquire() returns, it gives the lock back;
    the pong stays owed and goes out with the next frame."""
    waiting = threading.Event()
    seen: list[tuple[int, bytes]] = []

    def script(peer: RawPeer) -> None:
        waiting.wait(10)
        peer.send_frame(0x9, b"are you there")
        while len(seen) < 2:
            frame = peer.recv_frame(10)
            seen.append((frame.opcode, frame.payload))
        peer.send_frame(0x1, b"answered")
        peer.expect_close(10)
        peer.send_close()

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=5)
    signal_when_polling(ws, waiting)
    lock = InterruptedAcquire(threading.get_ident())
    ws._writer.frame_lock = lock  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        ws.recv(timeout=5)
    assert not lock._is_owned()
    ws.send("go", timeout=2)
    assert ws.recv(timeout=5) == "answered"
    assert sorted(seen) == [(0x1, b"go"), (0xA, b"are you there")]
    ws.close()
    server.done.wait(10)
    server.check()
    assert ws.close_code == 1000
