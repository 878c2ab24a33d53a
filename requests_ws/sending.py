"""The socket's write side: whole frames, written within a deadline, in order.

:class:`FrameWriter` is composed into :class:`~requests_ws.connection.ClientConnection`
and owns every write to the socket. Its rules:

* **The frame lock** is held by the one thread writing a frame, from its first
  byte to its last. Control frames (ping, pong, close) need only this lock, so
  they go out between the frames of a fragmented message.
* **The message lock** is held by a sender from the first frame of a data
  message to its last, so messages from different threads never interleave.
  A one-frame message may go out with the frame lock alone when no fragmented
  message has begun (the protocol says so under the state lock).
  Order of acquisition: message lock, then frame lock, then (briefly) the
  connection's state lock; never the other way round.
* **Whole or not begun.** A write waits for the socket to be writable *before*
  the frame is serialized (and so before a compressor takes the message). A
  deadline that passes before that leaves everything as it was; any failure
  after it (timeout, ``KeyboardInterrupt``, an error) cuts the frame, and
  :meth:`FrameWriter.write` then calls ``on_cut`` so the connection fails:
  a half-written frame is never followed by another.
* **Owed control frames** live in one bounded slot (:class:`OwedFrames`: at
  most one pong -- only the latest ping needs an answer, RFC 6455 5.5.3 --,
  one keepalive ping and one close frame), guarded by the connection's state
  lock. A thread that cannot take the frame lock at once leaves its frame there;
  whoever holds the frame lock writes the slot when it releases the lock, and
  checks again *after* releasing, so nothing is left behind by a race.
* **The ping table is in wire order.** A ping joins the connection's table of
  pings waiting for a pong only when its frame is about to be written, by the
  holder of the frame lock under the state lock: a ``ping()`` once it holds
  the frame lock, the owed keepalive ping when it is taken from the slot (and
  it leaves the table again if it goes back to the slot unwritten). A pong
  acknowledges its ping and every ping before it in the table, so it can only
  acknowledge pings that were on the wire before the one it answers.
* **Interrupts.** Both locks are RLocks, for their owner check, not for
  re-entry. A lock is taken inside the ``try`` whose ``finally`` releases
  it, and released there only if this thread holds it (``release()`` by
  another thread raises): an interrupt that lands as ``acquire()`` returns
  (CPython runs signal handlers as a call returns) cannot leave it held, and
  one that lands while it waits releases nothing. Owed frames taken for the
  wire and not written go back to the slot (``frames_written`` says which
  went out). Re-entry: a data message sent by a thread that holds the message
  lock is refused by the connection (``ConcurrencyError``); a one-frame
  message or a control frame from a logging handler's record of a frame goes
  out whole before that frame; owed frames are never written while this
  thread's own frame is open.
* **Nothing after a cut.** A frame is *open* from just before its first byte
  to just after its last (``frame_open``, written only by the frame lock's
  holder). A frame still open when the frame lock is released was cut, however
  the cutting exception got there (an interrupt may even land inside
  ``on_cut``): the writer becomes ``ended``, ``on_cut`` runs (again), and the
  owed frames are dropped. Once ``ended`` -- a cut, or the connection's end,
  which sets it under the state lock -- nothing more is written: :meth:`write`
  raises and owed frames are dropped, never written after a partial frame.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "CLOSE",
    "CONTINUING",
    "CONTROL_WRITE",
    "WRITE_WOULD_BLOCK",
    "at_least",
    "PING",
    "PONG",
    "FrameWriter",
    "NotBegun",
    "OwedFrames",
]

# What a non-blocking write raises when the socket cannot take bytes now.
WRITE_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError)
# A control frame that has begun is given at least this long to finish.
CONTROL_WRITE = 1.0


# The kinds of owed frames, by opcode, in the order they go out (close last).
PONG, PING, CLOSE = 0xA, 0x9, 0x8
_WIRE_ORDER = (PONG, PING, CLOSE)


class OwedFrames(dict[int, bytes]):
    """Control frames waiting for the frame lock: at most one of each kind
    (``PONG``, ``PING``, ``CLOSE``), keyed by opcode. A dict, so that "is
    anything owed?" costs no Python call on the hot path.

    An owed ping may carry a waiter (:meth:`owe_ping`): it joins ``pings``,
    the connection's table of pings waiting for a pong, when the frame is
    taken for the wire, and leaves it if the frame is restored unwritten.

    Guarded by the connection's state lock.
    """

    def __init__(self, pings: dict[bytes, Any]) -> None:
        super().__init__()
        self.pings = pings
        # (payload, waiter) of the owed ping, until it is taken.
        self.ping_waiter: tuple[bytes, Any] | None = None
        # The same, between its take and the end of that write.
        self._ping_taken: tuple[bytes, Any] | None = None

    def owe_ping(self, frame: bytes, payload: bytes, waiter: Any) -> None:
        """Owe a ping whose ``waiter`` joins ``pings`` as the frame is taken."""
        self[PING] = frame
        self.ping_waiter = (payload, waiter)

    def drop_ping(self) -> None:
        """Forget the owed ping and its waiter (the connection is closing)."""
        self.pop(PING, None)
        self.ping_waiter = None

    def take(self) -> list[bytes]:
        """Remove and return the owed frames in wire order (close last)."""
        frames = [self[kind] for kind in _WIRE_ORDER if kind in self]
        # No call nor loop from the first change to the return: no signal is
        # handled in between, so the caller gets the frames or nothing moved.
        waiter = self.ping_waiter
        self._ping_taken = None
        if waiter is not None and PING in self:
            self.ping_waiter = None
            self.pings[waiter[0]] = waiter[1]
            self._ping_taken = waiter
        if PONG in self:
            del self[PONG]
        if PING in self:
            del self[PING]
        if CLOSE in self:
            del self[CLOSE]
        return frames

    def restore(self, frames: list[bytes]) -> None:
        """Put back frames taken but not written (a newer one of a kind wins)."""
        for frame in frames:
            kind = frame[0] & 0x0F
            if kind in self:
                continue
            self[kind] = frame
            taken = self._ping_taken
            if kind == PING and taken is not None:
                # Unwritten: out of the table until it is taken again.
                self.pings.pop(taken[0], None)
                self.ping_waiter = taken
        self._ping_taken = None

    def clear(self) -> None:
        super().clear()
        self.ping_waiter = None
        self._ping_taken = None


class FrameWriter:
    """Writes whole frames to a non-blocking stream within deadlines.

    ``wait_writable(timeout)`` waits for the stream's file descriptor;
    ``state_lock`` is the connection's state lock (it guards ``owed`` and
    ``pings``, the connection's table of pings waiting for a pong);
    ``on_cut(error)`` is called (frame lock held, state lock not) when a
    frame was interrupted after its first byte: the connection must fail
    without writing anything more.
    """

    def __init__(
        self,
        stream: Any,
        wait_writable: Callable[[float | None], bool],
        state_lock: threading.RLock,
        on_cut: Callable[[BaseException], None],
        pings: dict[bytes, Any] | None = None,
    ) -> None:
        self.stream = stream
        self.wait_writable = wait_writable
        self.state_lock = state_lock
        self.on_cut = on_cut
        # RLocks for their owner check (release() by another thread raises),
        # not for re-entry: see "Interrupts" above.
        self.frame_lock = threading.RLock()
        self.message_lock = threading.RLock()
        self.owed = OwedFrames({} if pings is None else pings)
        # A frame has begun and not ended (written by the frame lock's holder).
        self.frame_open = False
        # Nothing more may be written (a cut, or the connection's end).
        self.ended = False
        # Frames write() finished, counted as their last byte went out (so a
        # caller interrupted just after knows whether its frame is on the wire).
        self.frames_written = 0
        # Streams that encrypt into a buffer of their own (TLS inside TLS)
        # must be flushed after the last byte of a frame.
        self._flush: Callable[[], bool] | None = getattr(stream, "flush_pending", None)
        # Whether send() may keep bytes back (then a frame ends with a flush).
        self.buffered = self._flush is not None

    # -- locks -----------------------------------------------------------

    @staticmethod
    def acquire(lock: threading.RLock, deadline: float | None) -> None:
        """Take ``lock`` before ``deadline``, or raise TimeoutError.

        Call it inside the ``try`` whose ``finally`` gives the lock back
        (:meth:`release_frame_lock`, :meth:`release_if_held`): an interrupt
        as ``acquire()`` returns then cannot leave the lock held.
        """
        if deadline is None:
            lock.acquire()
        elif not lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise TimeoutError("timed out while waiting for another thread's send to finish")

    @staticmethod
    def release_if_held(lock: threading.RLock) -> bool:
        """Release ``lock`` if this thread holds it; whether it did."""
        try:
            lock.release()
        except RuntimeError:  # not this thread's: never taken
            return False
        return True

    def release_frame_lock(self, deadline: float | None) -> None:
        """Release the frame lock if this thread holds it, writing the owed
        frames first.

        Frames owed by a thread that found the lock taken are written here;
        after releasing, the slot is checked once more, since a frame may have
        been left there between the last check and the release.

        A frame still open here was cut: nothing more is ever written.
        """
        again = False
        try:
            if self.frame_open or self.owed:
                if self.frame_lock._is_owned():  # type: ignore[attr-defined]
                    again = self.settle_held(deadline)
            else:
                again = True
        finally:
            released = self.release_if_held(self.frame_lock)
        if released and again and self.owed:
            self.flush_owed(deadline, at_least(deadline, CONTROL_WRITE))

    def settle_held(self, deadline: float | None) -> bool:
        """Before the frame lock's release, by its holder: a frame left open
        was cut (writing ends for good); owed frames are written. Returns
        whether frames owed after the release may be written too."""
        if self.frame_open:
            with self.state_lock:
                self.ended = True
                self.owed.clear()
            # on_cut may have been interrupted (or never reached) in write().
            self.on_cut(ConnectionError("a frame was cut short"))
            self.frame_open = False
            return False
        if self.owed:
            return self._write_owed(deadline, at_least(deadline, CONTROL_WRITE))
        return True

    def flush_owed(self, begin_by: float | None, deadline: float | None) -> None:
        """Write the owed frames now unless another thread is writing (it
        will). Each must begin by ``begin_by`` (else it stays owed) and end by
        ``deadline``."""
        frame_lock = self.frame_lock
        while self.owed:
            try:
                if not frame_lock.acquire(blocking=False):
                    return
                if self.frame_open:
                    return  # this very thread is inside a frame: its release writes them
                if not self._write_owed(begin_by, deadline):
                    return
            finally:
                self.release_if_held(frame_lock)

    def _write_owed(self, begin_by: float | None, deadline: float | None) -> bool:
        """Write the owed frames; False when one could not begin in time
        (it and the rest stay owed) or the connection ended."""
        already = self.frames_written
        frames: list[bytes] = []
        try:
            # In the try: an interrupt as the lock is given up (frames taken)
            # restores them below.
            with self.state_lock:
                if self.ended:
                    # Never after a cut frame, nor on a connection that has ended.
                    self.owed.clear()
                    return False
                frames = self.owed.take()
            for frame in frames:
                # Waiting for writability first makes a frame cut by a full
                # socket buffer (and so a failed connection) unlikely.
                if not self.begin(begin_by):
                    raise NotBegun("the socket cannot take the frame yet")
                self.write(frame, deadline, begin_by=begin_by)
        except BaseException as exc:
            if isinstance(exc, (OSError, TimeoutError)) and not isinstance(exc, NotBegun):
                return False  # on_cut has ended the connection: nothing more is written
            if not (self.ended or self.frame_open):
                # Not begun, or an interrupt between frames: the frames not on
                # the wire stay owed for the next writer.
                with self.state_lock:
                    self.owed.restore(frames[self.frames_written - already :])
            if isinstance(exc, NotBegun):
                return False
            raise
        return True

    # -- writing -----------------------------------------------------------

    def begin(self, deadline: float | None) -> bool:
        """Wait until a frame can begin (the stream is writable); call with
        the frame lock held, before serializing a frame whose serialization
        changes state (compression, fragmentation). False when ``deadline``
        passed first: nothing of the frame exists yet, so nothing is lost."""
        flush = self._flush
        while True:
            if (flush is None or flush()) and self.wait_writable(0):
                return True
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                return False
            self.wait_writable(timeout)

    def write(
        self,
        data: bytes | bytearray | memoryview,
        deadline: float | None,
        *,
        begin_by: float | _Continuing | None = None,
        ends_frame: bool = True,
    ) -> None:
        """Write all of ``data``; call with the frame lock held.

        ``begin_by`` (a deadline, or ``CONTINUING`` when ``data`` continues a
        frame already begun) bounds the wait for the first byte: when it passes
        with nothing written, :class:`NotBegun` is raised and nothing is lost.
        Any failure after the first byte cuts the frame: ``on_cut`` runs and the
        exception propagates (TimeoutError past ``deadline``). ``ends_frame``
        false: more of the same frame follows (the frame stays open).
        Once the writer has ``ended``, raises BrokenPipeError and writes nothing.
        """
        if self.ended:
            raise BrokenPipeError("the connection has ended: nothing more is written")
        stream = self.stream
        view = memoryview(data)
        total = len(view)
        written = 0
        fresh = begin_by is not CONTINUING
        # Set before each send: an interrupt that lands after send() returned
        # but before ``written`` counts it must still be taken as a cut.
        attempted = False
        self.frame_open = True
        try:
            while written < total:
                try:
                    attempted = True
                    written += stream.send(view[written:])
                    continue
                except WRITE_WOULD_BLOCK:
                    attempted = False
                if fresh and not written:
                    limit = deadline if begin_by is None else begin_by
                    assert not isinstance(limit, _Continuing)
                    if limit is not None and limit <= time.monotonic():
                        raise NotBegun("timed out before sending: nothing was sent")
                    self.wait_writable(None if limit is None else limit - time.monotonic())
                    continue
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    raise TimeoutError("timed out in the middle of a frame")
                self.wait_writable(timeout)
            flush = self._flush
            while flush is not None and not flush():
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    raise TimeoutError("timed out in the middle of a frame")
                self.wait_writable(timeout)
        except NotBegun:
            self.frame_open = False  # nothing of this frame was written
            raise
        except BaseException as exc:
            # A broken socket ends the connection too, even before a byte.
            if written or attempted or not fresh or isinstance(exc, OSError):
                self.ended = True
                self.on_cut(exc)
            elif fresh:
                self.frame_open = False
            raise
        else:
            # No call from here to the end of the frame's bookkeeping: no
            # signal is handled in between.
            if ends_frame:
                self.frame_open = False
                self.frames_written += 1
        finally:
            view.release()


class _Continuing:
    """The type of CONTINUING."""


CONTINUING = _Continuing()


class NotBegun(TimeoutError):
    """A deadline passed before the first byte of a frame: nothing was sent."""


def at_least(deadline: float | None, seconds: float) -> float | None:
    """A deadline no earlier than ``seconds`` from now (for a frame begun)."""
    if deadline is None:
        return None
    return max(deadline, time.monotonic() + seconds)
