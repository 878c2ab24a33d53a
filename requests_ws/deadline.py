"""The one deadline of an opening: ``open_timeout`` for TCP, proxy, TLS, the
HTTP head and body, redirects and auth retries, all together.

Two mechanisms keep it, because a per-read socket timeout alone restarts the
clock with every byte a trickling peer sends:

* :meth:`Deadline.remaining` gives each blocking operation at most the time
  left (and raises :class:`OpenTimeout` once none is);
* the watchdog, told of a deadline when its first socket is :meth:`watched
  <Deadline.watch>`, shuts every watched socket down at the deadline, which
  wakes whatever read or write is blocked on it, inside urllib3, http.client
  or the ssl module alike. :meth:`Deadline.finish` takes the deadline off the
  watchdog; it raises :class:`OpenTimeout` if the watchdog fired first, so a
  socket cut by it is never handed on.

The caller turns any error raised after the deadline passed into
:meth:`Deadline.expired`, chained to the low-level error.

One watchdog thread serves every opening of the process (starting a timer
thread per opening cost more than the rest of the deadline's work). The
rules of its shared state:

* The watchdog's lock guards its heap of deadlines (by end time), its
  thread and the time that thread will wake up by itself; the thread sleeps
  on the watchdog's condition until the earliest end in the heap, or without
  a timeout when the heap is empty (an idle process wakes nobody).
  :meth:`Deadline.watch` adds a deadline once, and wakes the thread only when
  it would otherwise wake after that deadline's end; :meth:`Deadline.finish`
  removes it without waking the thread, which wakes at the removed end,
  finds nothing due and sleeps on (so a run of openings, each finished
  before its end, costs one wake-up per ``open_timeout``, not one each).
* A deadline's own lock guards its sockets and its ``fired``/``finished``
  flags. The watchdog's thread pops a due deadline under the watchdog's lock,
  releases it, then fires the deadline under the deadline's lock: sockets are
  shut down with that lock held, so once :meth:`~Deadline.finish` or
  :meth:`~Deadline.unwatch` has returned, the watchdog no longer touches
  those sockets and the caller may close them (a descriptor number reused
  elsewhere is never shut down).
* Lock order: a deadline's lock, then the watchdog's; the watchdog's thread
  never holds its own lock while taking a deadline's.
* The thread is a daemon, started at the first watched deadline (again
  after a fork); a deadline that fires is popped from the heap, and
  :meth:`Deadline.finish` removes one that did not, so the heap holds only
  openings in progress (:func:`watched_count`).
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time

from .exceptions import OpenTimeout
from .redaction import redact_url

__all__ = ["Deadline", "watched_count"]


class Deadline:
    """``timeout`` seconds from now (``None``: no limit) to open ``uri``."""

    def __init__(self, timeout: float | None, uri: str) -> None:
        self.timeout = timeout
        self._given_uri = uri
        self.end = None if timeout is None else time.monotonic() + timeout
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._on_watchdog = False
        self._fired = False
        self._finished = False

    @property
    def uri(self) -> str:
        """The URI being opened, as shown in messages (password masked)."""
        return redact_url(self._given_uri)

    def remaining(self) -> float | None:
        """Seconds left, for one blocking operation; raises OpenTimeout at 0."""
        if self.end is None:
            return None
        left = self.end - time.monotonic()
        if left <= 0 or self._fired:
            raise self.expired()
        return left

    def has_passed(self) -> bool:
        """True once the deadline is reached (whatever the watchdog did)."""
        return self._fired or (self.end is not None and time.monotonic() >= self.end)

    def expired(self, during: str = "") -> OpenTimeout:
        """The exception to raise now that the deadline has passed."""
        what = f" while {during}" if during else ""
        return OpenTimeout(
            f"timed out after {self.timeout} s{what} opening the WebSocket connection to "
            f"{self.uri} (open_timeout)"
        )

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline unless :meth:`finish` comes first."""
        end = self.end
        if end is None:
            return
        with self._lock:
            if self._finished:
                return
            if self._fired:
                _shut_down(sock)
                return
            self._sockets.append(sock)
            if not self._on_watchdog:
                self._on_watchdog = True
                _WATCHDOG.add(end, self)

    def unwatch(self, sock: socket.socket) -> None:
        """Stop watching ``sock`` (closed, or no longer part of the opening)."""
        with self._lock:
            if sock in self._sockets:
                self._sockets.remove(sock)

    @property
    def fired(self) -> bool:
        """True once the watchdog has shut the watched sockets down."""
        return self._fired

    def finish(self, *, check: bool = True) -> None:
        """Take the deadline off the watchdog; with ``check``, raise
        OpenTimeout if it already cut the sockets (the opening cannot be
        handed on then)."""
        with self._lock:
            self._finished = True
            self._sockets.clear()
            fired = self._fired
            if self._on_watchdog and not fired:
                _WATCHDOG.remove(self)
            self._on_watchdog = False
        if fired and check:
            raise self.expired()

    def _fire(self) -> None:
        """Shut the watched sockets down (the watchdog's thread calls this at
        the end), unless the opening finished first."""
        with self._lock:
            self._on_watchdog = False
            if self._finished:
                return
            self._fired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    """Shut the OS socket down (not the TLS layer: another thread may be in it).

    A socket that ``ssl.wrap_socket`` detached has no descriptor any more:
    callers watch the wrapped socket too.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """The one thread that fires every deadline at its end (rules above)."""

    def __init__(self) -> None:
        self.start_over()

    def start_over(self) -> None:
        """No deadlines, no thread yet (also in a forked child: it has no
        watchdog thread, and its lock may be held by a thread that did not
        follow)."""
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        # When the thread wakes up by itself next (None: not before a notify).
        self._wakes_at: float | None = None

    def add(self, end: float, deadline: Deadline) -> None:
        with self._cond:
            entry = (end, next(self._order), deadline)
            heapq.heappush(self._heap, entry)
            thread = self._thread
            if thread is None or not thread.is_alive():
                thread = threading.Thread(
                    target=self._run, name="requests_ws-open-deadlines", daemon=True
                )
                self._thread = thread
                thread.start()
            elif self._wakes_at is None or end < self._wakes_at:
                # It would wake too late for this one (or never): wake it now.
                self._cond.notify()

    def remove(self, deadline: Deadline) -> None:
        # No wake-up: if it was the earliest, the thread still wakes at its
        # end, finds what is due then, and sleeps again (one wake-up for a
        # whole run of openings, none for a process that stops opening).
        with self._cond:
            heap = self._heap
            for index, entry in enumerate(heap):
                if entry[2] is deadline:
                    last = heap.pop()
                    if index < len(heap):
                        heap[index] = last
                        heapq.heapify(heap)
                    return

    def count(self) -> int:
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        cond = self._cond
        heap = self._heap
        while True:
            with cond:
                while True:
                    if not heap:
                        self._wakes_at = None
                        cond.wait()
                        continue
                    end = heap[0][0]
                    left = end - time.monotonic()
                    if left <= 0:
                        due = heapq.heappop(heap)[2]
                        break
                    self._wakes_at = end
                    cond.wait(left)
            due._fire()


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_WATCHDOG.start_over)


def watched_count() -> int:
    """How many openings the watchdog is watching now (none once every
    opening has finished or fired)."""
    return _WATCHDOG.count()
