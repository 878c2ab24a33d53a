"""The one deadline of an opening: ``open_timeout`` for TCP, proxy, TLS, the
HTTP head and body, redirects and auth retries, all together.

Two mechanisms keep it, because a per-read socket timeout alone restarts the
clock with every byte a trickling peer sends:

* :meth:`Deadline.remaining` gives each blocking operation at most the time
  left (and raises :class:`OpenTimeout` once none is);
* a watchdog timer, started when the first socket is :meth:`watched
  <Deadline.watch>`, shuts every watched socket down at the deadline, which
  wakes whatever read or write is blocked on it, inside urllib3, http.client
  or the ssl module alike. :meth:`Deadline.finish` stops the watchdog; it
  raises :class:`OpenTimeout` if the watchdog fired first, so a socket cut by
  it is never handed on.

The caller turns any error raised after the deadline passed into
:meth:`Deadline.expired`, chained to the low-level error.
"""

from __future__ import annotations

import socket
import threading
import time

from .exceptions import OpenTimeout
from .redaction import redact_url

__all__ = ["Deadline"]


class Deadline:
    """``timeout`` seconds from now (``None``: no limit) to open ``uri``."""

    def __init__(self, timeout: float | None, uri: str) -> None:
        self.timeout = timeout
        self.uri = redact_url(uri)
        self.end = None if timeout is None else time.monotonic() + timeout
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self._fired = False
        self._finished = False

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
        if self.end is None:
            return
        with self._lock:
            if self._finished:
                return
            if self._fired:
                _shut_down(sock)
                return
            self._sockets.append(sock)
            if self._timer is None:
                delay = max(0.0, self.end - time.monotonic())
                self._timer = threading.Timer(delay, self._fire)
                self._timer.name = "requests_ws-open-deadline"
                self._timer.daemon = True
                self._timer.start()

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
        """Stop the watchdog; with ``check``, raise OpenTimeout if it already
        cut the sockets (the opening cannot be handed on then)."""
        with self._lock:
            self._finished = True
            timer, self._timer = self._timer, None
            self._sockets.clear()
            fired = self._fired
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()
        if fired and check:
            raise self.expired()

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._fired = True
            sockets = list(self._sockets)
        for sock in sockets:
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
