"""Lock stand-ins for forcing an interleaving in race tests.

:class:`WrappedLock` behaves as ``threading.Lock``; a test subclasses it and
overrides ``acquire`` or ``release`` to park a thread, or to signal that one
arrived, at that exact point (never a sleep).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["WrappedLock"]


class WrappedLock:
    """A threading.Lock with overridable acquire() and release()."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *args: Any) -> None:
        self.release()
