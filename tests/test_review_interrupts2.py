"""Reproductions for the review of the interrupt-safety commits (a7ac810..5538033).

Each test forces the interleaving with a stand-in (a lock, a wait, a method)
that raises ``KeyboardInterrupt`` exactly where CPython would run a signal
handler: right after a C call returns. No sleeps force an order.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import requests_ws
from requests_ws.connection import ClientConnection
from requests_ws.sending import CLOSE, PONG

from .peers.interrupts import (
    SignalAfterRelease,
    TakenElsewhere,
    answer_close,
)
from .peers.raw_peer import RawPeer

# -- 1: owed frames taken for the wire, lost before the try that restores them ---------


def test_interrupt_as_owed_frames_are_taken_keeps_the_close_frame_owed(raw_server: Any) -> None:
    """close() owes its close frame and writes it: _write_owed takes it from
    the slot under the state lock, and the interrupt lands as that ``with``
    block gives the lock up -- before the ``try`` whose handler restores
    frames taken and not written. The close frame is then neither on the wire
    nor owed, and close_sent is set, so no later close() sends one: the
    closing handshake can only time out (1006)."""
    server = raw_server(answer_close)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    me = threading.get_ident()
    writer = ws._writer
    real_frame_lock = writer.frame_lock
    writer.frame_lock = TakenElsewhere(me)  # type: ignore[assignment]
    real_state_lock = writer.state_lock
    state_lock = SignalAfterRelease(real_state_lock)
    writer.state_lock = state_lock  # type: ignore[assignment]
    state_lock.thread = me
    with pytest.raises(KeyboardInterrupt):
        ws.close()
    writer.state_lock = real_state_lock
    writer.frame_lock = real_frame_lock
    with ws._lock:
        owed = CLOSE in writer.owed
    assert owed, "the close frame taken for the wire was lost: neither written nor owed"
    ws.close()
    assert ws.close_code == 1000


# -- 2: send()'s way out writes the restored frames again, without a deadline ----------


class _Blocked(BaseException):
    """Raised where the real wait would block until the socket is writable."""


def test_interrupted_owed_write_in_a_small_send_does_not_wait_again(raw_server: Any) -> None:
    """send("hello") takes the short cut; on the way out it writes the pong
    the reader owes, and the socket is full, so it waits (no deadline) for it
    to drain. Ctrl-C there: the pong goes back to the slot (the background
    thread writes it later) and settle_held() raises -- but ``again`` is still
    True, so _send_small's ``finally`` calls flush_owed(None, None), which
    waits again, without bound, for the same full socket: the interrupt does
    not stop the blocked call."""
    server = raw_server(answer_close)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    me = threading.get_ident()
    writer = ws._writer
    real_frame_lock = writer.frame_lock
    writer.frame_lock = TakenElsewhere(me)  # type: ignore[assignment]
    real_wait = writer.wait_writable
    calls: list[float | None] = []
    interrupted = False

    def wait_writable(timeout: float | None) -> bool:
        nonlocal interrupted
        if threading.get_ident() != me:
            return real_wait(timeout)
        calls.append(timeout)
        if timeout == 0:
            return False  # the socket is full (the peer does not read yet)
        if not interrupted:
            interrupted = True
            raise KeyboardInterrupt  # Ctrl-C while waiting for the socket
        raise _Blocked("send() waits again, without a deadline, after the interrupt")

    writer.wait_writable = wait_writable
    with ws._lock:
        writer.owed[PONG] = ws.protocol.send_pong(b"owed")
    try:
        with pytest.raises(KeyboardInterrupt):
            ws.send("hello")
    finally:
        writer.wait_writable = real_wait
        writer.frame_lock = real_frame_lock
    assert calls == [0, None]
    with ws._lock:
        assert PONG in writer.owed, "the pong stays owed for the next writer"
    ws.close()
    assert ws.close_code == 1000


# -- 3: an interrupt as recv() wakes the background thread leaks _role_wanted ----------


def test_interrupt_as_recv_wakes_the_background_thread_keeps_it_reading(
    raw_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recv() finds the background thread reading, counts itself in
    _role_wanted and writes the wake-up byte -- before the ``try`` whose
    ``finally`` counts it out. An interrupt as that send() returns leaves
    _role_wanted at 1 for good: the background thread believes a caller
    waits for the role, gives it up and parks forever, so nobody reads while
    the application is away from recv() (the server's ping goes unanswered)."""
    polling = threading.Event()
    interrupted = threading.Event()
    seen: list[tuple[int, bytes]] = []
    answered = threading.Event()

    def script(peer: RawPeer) -> None:
        interrupted.wait(10)
        peer.send_frame(0x9, b"still there?")
        try:
            frame = peer.recv_frame(5)
            seen.append((frame.opcode, frame.payload))
        except Exception:
            pass
        answered.set()
        answer_close(peer)

    server = raw_server(script)
    ws = requests_ws.connect(server.uri, compression=None, ping_interval=None, close_timeout=2)
    me = threading.get_ident()
    readiness = ws._readiness
    real_poll = readiness.wait_readable_or_woken

    def wait_readable_or_woken(timeout: float | None) -> tuple[bool, bool]:
        polling.set()
        return real_poll(timeout)

    readiness.wait_readable_or_woken = wait_readable_or_woken  # type: ignore[method-assign]
    real_wake = ClientConnection._wake
    armed = [True]

    def wake(self: ClientConnection) -> None:
        real_wake(self)
        if self is ws and armed[0] and threading.get_ident() == me:
            armed[0] = False
            raise KeyboardInterrupt  # a signal handled as the byte's send() returns

    monkeypatch.setattr(ClientConnection, "_wake", wake)
    # The background thread holds the read role and waits in poll().
    assert polling.wait(10)
    with pytest.raises(KeyboardInterrupt):
        ws.recv(timeout=5)
    assert not armed[0], "the interrupt landed where the test meant it to"
    with ws._lock:
        wanted = ws._role_wanted
    interrupted.set()
    assert answered.wait(10)
    assert wanted == 0, "recv() left _role_wanted counted after the interrupt"
    assert seen == [(0xA, b"still there?")]
    ws.close()
    assert ws.close_code == 1000
