"""Waiting for a socket to become readable or writable, portably.

:class:`Readiness` owns the wait objects of one connection. It uses
``select.poll`` where the platform has it (no limit on file descriptor
numbers, one registration per connection) and ``select.select`` elsewhere
(Windows), decided when the object is built, never at import, so the package
imports where ``select.poll`` does not exist.
"""

from __future__ import annotations

import select
from typing import Any

__all__ = ["Readiness"]

# poll() flags are read from the module when a Readiness is built.
_READ_EVENTS = ("POLLIN", "POLLPRI", "POLLHUP", "POLLERR")


class Readiness:
    """Waits on one socket's file descriptor and, optionally, a wake-up one.

    ``wait_readable`` and ``wait_writable`` return True when the socket is
    ready (or in error: the next call on it says why), False when the timeout
    passed or only the wake-up descriptor fired. Each poll object is used by
    one thread at a time: the reader uses the read objects and the writer
    (under the frame lock) the write object.
    """

    def __init__(self, fileno: int, wake_fileno: int | None) -> None:
        self.fileno = fileno
        self.wake_fileno = wake_fileno
        poll = getattr(select, "poll", None)
        # The poll object for the socket alone (None where select is used):
        # a reader waiting without a timeout calls its poll() directly.
        self.read_poll: Any = None
        if poll is not None:
            readable = 0
            for name in _READ_EVENTS:
                readable |= getattr(select, name)
            self.read_poll = poll()
            self.read_poll.register(fileno, readable)
            self._read_or_wake_poll = poll()
            self._read_or_wake_poll.register(fileno, readable)
            if wake_fileno is not None:
                self._read_or_wake_poll.register(wake_fileno, select.POLLIN)
            self._write_poll = poll()
            self._write_poll.register(fileno, select.POLLOUT | select.POLLHUP | select.POLLERR)

    def wait_readable(self, timeout: float | None) -> bool:
        """Wait until the socket has data (or EOF or an error)."""
        read_poll = self.read_poll
        if read_poll is not None:
            return bool(read_poll.poll(None if timeout is None else max(timeout, 0) * 1000))
        ready, _, errors = select.select([self.fileno], [], [self.fileno], _clamp(timeout))
        return bool(ready or errors)

    def wait_readable_or_woken(self, timeout: float | None) -> tuple[bool, bool]:
        """Wait for data on the socket or a byte on the wake-up descriptor.

        Returns (socket ready, woken).
        """
        wake = self.wake_fileno
        if self.read_poll is not None:
            events = self._read_or_wake_poll.poll(
                None if timeout is None else max(timeout, 0) * 1000
            )
            socket_ready = woken = False
            for fd, _ in events:
                if fd == wake:
                    woken = True
                else:
                    socket_ready = True
            return socket_ready, woken
        fds = [self.fileno] if wake is None else [self.fileno, wake]
        ready, _, errors = select.select(fds, [], fds, _clamp(timeout))
        return (self.fileno in ready or self.fileno in errors), (wake is not None and wake in ready)

    def wait_writable(self, timeout: float | None) -> bool:
        """Wait until the socket can take more bytes (or is in error)."""
        if self.read_poll is not None:
            return bool(self._write_poll.poll(None if timeout is None else max(timeout, 0) * 1000))
        _, ready, errors = select.select([], [self.fileno], [self.fileno], _clamp(timeout))
        return bool(ready or errors)


def _clamp(timeout: float | None) -> float | None:
    return None if timeout is None else max(timeout, 0.0)
