"""Reproductions for the review of the interrupt-safety commit (a7ac810).

Each test forces the interleaving with a stand-in (a lock, a stream, a poll
object) that raises ``KeyboardInterrupt`` exactly where CPython would run a
signal handler: right after a C call returns. No sleeps force an order.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

import requests_ws
from requests_ws import ConcurrencyError, ConnectionClosedOK
from requests_ws.sending import PONG

from .peers.interrupts import (
    InterruptedSend,
    SignalAfterReacquire,
    SignalAfterRelease,
    TakenElsewhere,
    answer_close,
    signal_when_polling,
)
from .peers.raw_peer import RawPeer

# -- 1: an interrupt while send()'s short cut writes an owed pong ---------------------


def test_interrupt_as_a_small_send_writes_an_owed_pong_frees_the_frame_lock(
    raw_server: Any,
) -> None:
    """send("hello") takes the short cut; on the way out it writes the pong
    owed by the reader, and the interrupt lands as that write returns. The
    connection ends (the pong was cut), but the frame lock must be given back:
    kept, no other thread can ever send, and the background thread never
    closes the socket (it waits for the frame lock)."""
    server = raw_server(answer_close)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=1)
    me = threading.get_ident()
    lock = TakenElsewhere(me)
    ws._writer.frame_lock = lock  # type: ignore[assignment]
    with ws._lock:
        ws._writer.owed[PONG] = ws.protocol.send_pong(b"owed")
    ws._writer.stream = InterruptedSend(ws._stream, me)
    try:
        with pytest.raises(KeyboardInterrupt):
            ws.send("hello")
        assert not lock._is_owned(), "send() left the frame lock held"
        ws.close()
        ws._background.join(10)
        assert not ws._background.is_alive(), "the background thread waits for the frame lock"
    finally:
        while lock._is_owned():
            lock.release()


# -- 2: an interrupt as ping()'s wait gives the state lock up -------------------------


class _WaitInterrupted:
    """The state lock as threading.Condition drives it: ``_release_save()``
    in one thread releases the lock and then raises, as CPython does when a
    signal is handled as that call returns (in Condition.wait, before its
    ``try``): wait() raises with the lock not held."""

    def __init__(self, real: Any, thread: int) -> None:
        self.real = real
        self.thread: int | None = thread

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self.real.acquire(blocking, timeout))

    def release(self) -> None:
        self.real.release()

    def _is_owned(self) -> bool:
        return bool(self.real._is_owned())

    def _release_save(self) -> Any:
        state = self.real._release_save()
        if self.thread == threading.get_ident():
            self.thread = None
            raise KeyboardInterrupt
        return state

    def _acquire_restore(self, state: Any) -> None:
        self.real._acquire_restore(state)


def test_interrupt_as_ping_starts_waiting_raises_keyboard_interrupt(raw_server: Any) -> None:
    """ping() waits for its pong inside ``with self._lock``; an interrupt as
    the wait gives the lock up leaves it not held, and the ``with`` exit's
    release() then raises RuntimeError in place of the KeyboardInterrupt."""
    server = raw_server(answer_close)  # never answers the ping
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    ws._cond = threading.Condition(_WaitInterrupted(ws._lock, threading.get_ident()))  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        ws.ping(b"are you there", timeout=5)
    assert not ws._lock._is_owned()  # type: ignore[attr-defined]
    ws.close()
    assert ws.close_code == 1000


# -- 3: the read role left by an interrupt waits for the same thread ------------------


def test_read_role_left_by_an_interrupt_goes_back_to_the_background_thread(
    raw_server: Any,
) -> None:
    """recv() is interrupted as it takes the state lock back after reading:
    the read role stays with the caller until that thread calls recv() or
    close() again. Meanwhile nobody reads: the server's ping is never
    answered (a server with keepalive drops the connection), another
    thread's ping() or close() waits out its timeout, and a connection that
    ends meanwhile never has its socket closed (the background thread waits
    for the role forever)."""
    waiting = threading.Event()
    interrupted = threading.Event()
    answered = threading.Event()
    seen: list[tuple[int, bytes]] = []

    def script(peer: RawPeer) -> None:
        waiting.wait(10)
        peer.send_frame(0x1, b"one")
        interrupted.wait(10)
        peer.send_frame(0x9, b"still there?")
        frame = peer.recv_frame(5)
        seen.append((frame.opcode, frame.payload))
        answered.set()
        answer_close(peer)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    signal_when_polling(ws, waiting)
    real_cond = ws._cond
    ws._cond = SignalAfterReacquire(real_cond, threading.get_ident())  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        ws.recv(timeout=5)
    ws._cond = real_cond
    interrupted.set()
    # The application is away from recv() (as after any interrupt): the
    # background thread reads for it, as it does whenever no caller reads.
    assert answered.wait(10), "nobody read the server's ping: the read role was kept"
    assert seen == [(0xA, b"still there?")]
    assert ws.recv(timeout=5) == "one"
    ws.close()
    assert ws.close_code == 1000


# -- 4: an interrupt where nothing of the stream can be lost ends the connection ------


class _SignalAtPop(list):  # type: ignore[type-arg]
    """The read-buffer pool: once armed for a thread, its next pop() there
    raises (a signal handled as pop() returns, before recv_into())."""

    thread: int | None = None

    def pop(self, *args: Any) -> Any:
        if self.thread == threading.get_ident():
            self.thread = None
            raise KeyboardInterrupt
        return super().pop(*args)


@pytest.mark.parametrize("where", ["after_parse", "before_read"])
def test_interrupt_where_no_byte_can_be_lost_keeps_the_connection(
    raw_server: Any, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """_on_read_cut ends the connection for any interrupt in _read_once:
    also one landing before recv_into() was called (nothing read) or once the
    bytes read were all parsed, as the state lock is released (the message
    sits in the hand-off slot). Nothing is lost there: the connection must
    go on, as for an interrupt while poll() waits."""
    from requests_ws import connection

    waiting = threading.Event()
    send_two = threading.Event()

    def script(peer: RawPeer) -> None:
        waiting.wait(10)
        peer.send_frame(0x1, b"one")
        send_two.wait(10)
        peer.send_frame(0x1, b"two")
        answer_close(peer)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    signalling = signal_when_polling(ws, waiting)
    me = threading.get_ident()
    if where == "after_parse":
        lock = SignalAfterRelease(ws._lock)
        ws._lock = lock  # type: ignore[assignment]

        def arm() -> None:
            lock.thread = me

    else:
        pool = _SignalAtPop()
        monkeypatch.setattr(connection, "_READ_BUFFERS", pool)

        def arm() -> None:
            pool.thread = me

    signalling.after = arm
    with pytest.raises(KeyboardInterrupt):
        ws.recv(timeout=5)
    signalling.after = None
    send_two.set()
    received = [ws.recv(timeout=5), ws.recv(timeout=5)]
    assert received == ["one", "two"]
    ws.close()
    assert ws.close_code == 1000
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=1)


# -- 5: an interrupt as the owed frames are being written ----------------------------


def test_owed_pong_interrupted_before_its_first_byte_stays_owed(raw_server: Any) -> None:
    """send() writes the pong the reader owed on its way out; an interrupt
    while that pong waits for the socket (before its first byte) must leave
    it owed, and the next send() writes it -- once."""
    seen: list[tuple[int, bytes]] = []
    server = raw_server(lambda peer: answer_close(peer, seen))
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=5)
    me = threading.get_ident()
    lock = TakenElsewhere(me)  # the background thread cannot write the pong
    writer = ws._writer
    writer.frame_lock = lock  # type: ignore[assignment]
    with ws._lock:
        writer.owed[PONG] = ws.protocol.send_pong(b"owed")
    real_wait = writer.wait_writable
    interrupt = [True]

    def wait_writable(timeout: float | None) -> bool:
        if interrupt[0] and threading.get_ident() == me:
            interrupt[0] = False
            raise KeyboardInterrupt
        return real_wait(timeout)

    writer.wait_writable = wait_writable
    with pytest.raises(KeyboardInterrupt):
        ws.send("first", timeout=5)  # written whole; the pong's wait interrupted
    assert not lock._is_owned()
    ws.send("second", timeout=5)
    ws.close()
    server.done.wait(10)
    server.check()
    assert seen == [(0x1, b"first"), (0x1, b"second"), (0xA, b"owed"), (0x8, seen[-1][1])]
    assert ws.close_code == 1000


# -- 6: a send from inside a send of the same thread ---------------------------------


class _SendingHandler(logging.Handler):
    """Sends a message from inside the record of the connection's own send
    (a log-shipping handler), once; keeps what that send raised."""

    def __init__(self, ws: Any) -> None:
        super().__init__(logging.DEBUG)
        self.ws = ws
        self.raised: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("> TEXT") and not self.raised:
            try:
                self.ws.send("from the handler", timeout=5)
            except BaseException as exc:
                self.raised.append(exc)


def test_send_from_a_logging_handler_during_a_compressed_send_is_refused(
    ws_server: Any,
) -> None:
    """Compressed, the handler's message would overtake the one being logged
    (already compressed) and garble the server's decompression context."""
    server = ws_server()
    logger = logging.getLogger("requests_ws.test.sending_handler")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    ws = requests_ws.connect(server.uri, ping_interval=None, logger=logger)
    handler = _SendingHandler(ws)
    logger.addHandler(handler)
    try:
        assert ws.protocol.extensions, "permessage-deflate was not negotiated"
        ws.send("logged message", timeout=5)
        assert [type(exc) for exc in handler.raised] == [ConcurrencyError], handler.raised
        assert ws.recv(timeout=5) == "logged message"
        ws.send("and the next", timeout=5)
        assert ws.recv(timeout=5) == "and the next"
    finally:
        logger.removeHandler(handler)
        ws.close()
    assert ws.close_code == 1000


def test_send_from_the_iterable_being_sent_raises_concurrency_error(ws_server: Any) -> None:
    server = ws_server()
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None)

    def fragments() -> Any:
        yield "one "
        ws.send("inside", timeout=5)
        yield "two"

    with pytest.raises(ConcurrencyError, match="inside a send"):
        ws.send(fragments())
    ws.close()
