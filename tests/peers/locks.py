"""Lock stand-ins for forcing an interleaving in race tests.

:class:`WrappedLock` behaves as ``threading.RLock`` (the writer's locks); a test subclasses it and
overrides ``acquire`` or ``release`` to park a thread, or to signal that one
arrived, at that exact point (never a sleep).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["WrappedLock"]


class WrappedLock:
    """A threading.RLock with overridable acquire() and release()."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *args: Any) -> None:
        self.release()
