"""Stand-ins that raise ``KeyboardInterrupt`` exactly where CPython would run
a signal handler -- right after a C call returns -- for the interrupt tests.

Each stand-in wraps the real object and fires once, in the thread it is
armed for (``thread``; ``None`` disarms it), so a test forces the interleaving
instead of racing a real signal. Also here: :func:`signal_when_polling`, to
learn that the caller waits on the socket, and :func:`answer_close`, the
server script that reads until the client's close.
"""

from __future__ import annotations

import threading
from typing import Any

from .locks import WrappedLock
from .raw_peer import RawPeer

__all__ = [
    "InterruptedAcquire",
    "InterruptedRead",
    "InterruptedSend",
    "SignalAfterReacquire",
    "SignalAfterRelease",
    "SignallingPoll",
    "TakenElsewhere",
    "answer_close",
    "signal_when_polling",
]


class _Once:
    """Fires once, in the armed thread."""

    def __init__(self, thread: int | None = None) -> None:
        self.thread = thread

    def fire(self) -> None:
        if self.thread == threading.get_ident():
            self.thread = None
            raise KeyboardInterrupt


class _Wrapping(_Once):
    """Wraps ``real``; everything not overridden goes to it."""

    def __init__(self, real: Any, thread: int | None = None) -> None:
        super().__init__(thread)
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class InterruptedRead(_Wrapping):
    """A stream whose first recv_into() that reads bytes raises once it has."""

    def recv_into(self, *args: Any) -> int:
        size = int(self.real.recv_into(*args))
        if size:
            self.fire()
        return size


class InterruptedSend(_Wrapping):
    """A stream whose first send() writes, then raises."""

    def send(self, data: Any) -> int:
        sent = int(self.real.send(data))
        self.fire()
        return sent


class SignalAfterReacquire(_Wrapping):
    """The state Condition: the first ``acquire()`` raises once it holds the
    lock (as recv() takes it back after reading)."""

    def acquire(self, *args: Any) -> bool:
        acquired = bool(self.real.acquire(*args))
        if acquired:
            self.fire()
        return acquired


class SignalAfterRelease(_Wrapping):
    """A lock whose next release() releases, then raises (as a ``with``
    block's exit returns)."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self.real.acquire(blocking, timeout))

    def release(self) -> None:
        self.real.release()
        self.fire()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *args: Any) -> None:
        self.release()


class InterruptedAcquire(WrappedLock):
    """A writer lock whose first acquire() raises once it holds the lock."""

    def __init__(self, thread: int) -> None:
        super().__init__()
        self.once = _Once(thread)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        acquired = super().acquire(blocking, timeout)
        if acquired:
            self.once.fire()
        return acquired


class TakenElsewhere(WrappedLock):
    """The frame lock, found taken by every thread but ``owner`` that tries it
    without waiting: owed frames stay owed until ``owner`` writes them."""

    def __init__(self, owner: int) -> None:
        super().__init__()
        self.owner = owner

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking and threading.get_ident() != self.owner:
            return False
        return super().acquire(blocking, timeout)


class SignallingPoll:
    """The caller's poll object: sets ``waiting`` when the caller waits on
    the socket, and runs ``after`` (in that thread) once the wait returns."""

    def __init__(self, real: Any, waiting: threading.Event) -> None:
        self.real = real
        self.waiting = waiting
        self.after: Any = None

    def poll(self, *args: Any) -> Any:
        self.waiting.set()
        result = self.real.poll(*args)
        if self.after is not None:
            self.after()
        return result


def signal_when_polling(ws: Any, waiting: threading.Event) -> SignallingPoll:
    """Make the caller's wait on the socket set ``waiting`` (poll or select)."""
    real_wait = ws._readiness.wait_readable
    signalling = SignallingPoll(getattr(ws._readiness, "read_poll", None), waiting)

    def wait_readable(timeout: float | None) -> bool:
        waiting.set()
        ready = bool(real_wait(timeout))
        if signalling.after is not None:
            signalling.after()
        return ready

    ws._readiness.wait_readable = wait_readable
    if signalling.real is not None:
        ws._readiness.read_poll = signalling
    return signalling


def answer_close(peer: RawPeer, seen: list[tuple[int, bytes]] | None = None) -> None:
    """Read frames until the client's close, answer it (or stop at EOF)."""
    try:
        while True:
            frame = peer.recv_frame(10)
            if seen is not None:
                seen.append((frame.opcode, frame.payload))
            if frame.opcode == 0x8:
                peer.send_close()
                return
    except Exception:
        pass
