"""Buffers that a large frame's payload is received into, then handed out.

:func:`payload_buffer` returns a writable view of ``size`` bytes and what the
payload is taken from at the end (:func:`take_payload`). Where the C
accelerator is built, the view is over a ``bytes`` object under construction
(``_speedups.fillable``): the payload is read in place and handed out as is,
with no copy. Without it (or with ``REQUESTS_WS_NO_SPEEDUPS=1``, as for
masking) the view is over a bytearray copied once into ``bytes`` at the end.
Either way the bytes handed out never change afterwards: the accelerated
``take()`` copies if a view of the buffer is still alive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["ACCELERATED", "payload_buffer", "take_payload"]

_fillable: Callable[[int], Any] | None
try:
    from ._speedups import fillable as _fillable
except ImportError:  # no compiler at install time
    _fillable = None

ACCELERATED = _fillable is not None and os.environ.get("REQUESTS_WS_NO_SPEEDUPS") != "1"


def payload_buffer(size: int) -> tuple[memoryview, Any]:
    """A writable view of ``size`` bytes, and the object to take the payload from."""
    if ACCELERATED and _fillable is not None:
        owner = _fillable(size)
        return memoryview(owner), owner
    return memoryview(bytearray(size)), None


def take_payload(view: memoryview, owner: Any) -> bytes:
    """The filled payload as bytes (in place when it can be); ``view`` is done."""
    if owner is None:
        copied = bytes(view)
        view.release()
        return copied
    view.release()
    taken: bytes = owner.take()
    return taken
