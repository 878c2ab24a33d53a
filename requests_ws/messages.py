"""The queue of received messages: assembly, order, and flow control.

:class:`MessageQueue` is guarded by the connection's state lock: every method
is called with that lock held. It owns:

* **Assembly.** A message that is one frame is kept as it is. The frames of a
  fragmented one are kept apart (``recv_streaming`` yields them one by one)
  up to 64 of them, then joined into one buffer as they arrive (a
  ``bytearray`` for binary, an ``io.StringIO`` for text): memory is the
  message's size, not an object per frame.
* **Order.** Messages leave in the order they arrived; a close frame or a
  protocol failure (the *terminal* event) comes after every message that
  arrived before it, and a message it cut short is dropped.
* **Flow control.** ``paused`` turns on when more than ``high`` complete
  messages wait, and off when ``low`` or fewer do.

The invariant, asserted: only the newest message may be incomplete, so the
message at the head is complete whenever ``complete`` is not zero.
"""

from __future__ import annotations

import collections
import io
from typing import cast

from .protocol import CloseReceived, Failure, Fragment

__all__ = ["MessageQueue"]

# Frames of one message kept apart (for recv_streaming) before they are joined.
_MAX_PIECES = 64


class _Assembling:
    """A message received in several frames, not yet taken by the application.

    The newest frames are kept as they are (``pieces``), so recv_streaming
    yields frame by frame; beyond ``_MAX_PIECES`` they are joined into
    ``buffer``, which holds the older data, so that memory stays the
    message's size however small its frames.
    """

    __slots__ = ("buffer", "fin", "is_text", "pieces", "started")

    def __init__(self, fragment: Fragment) -> None:
        self.is_text = fragment.is_text
        self.fin = fragment.fin
        self.started = False  # recv_streaming took a piece already
        self.buffer: bytearray | io.StringIO | None = None
        self.pieces: list[str | bytes] = [fragment.data]

    def add(self, data: str | bytes) -> None:
        pieces = self.pieces
        pieces.append(data)
        if len(pieces) > _MAX_PIECES:
            buffer = self.buffer
            if buffer is None:
                buffer = self.buffer = io.StringIO() if self.is_text else bytearray()
            _extend(buffer, pieces)
            pieces.clear()

    def take_all(self) -> str | bytes:
        buffer, pieces = self.buffer, self.pieces
        data: str | bytes
        if buffer is None:
            if self.is_text:
                data = "".join(cast("list[str]", pieces))
            else:
                data = b"".join(cast("list[bytes]", pieces))
        else:
            _extend(buffer, pieces)
            data = bytes(buffer) if isinstance(buffer, bytearray) else buffer.getvalue()
        self.buffer = None
        self.pieces = []
        return data

    def take_oldest(self) -> str | bytes | None:
        """The oldest data not taken yet: the joined buffer, else one frame."""
        buffer = self.buffer
        if buffer is not None:
            self.buffer = None
            return bytes(buffer) if isinstance(buffer, bytearray) else buffer.getvalue()
        if self.pieces:
            return self.pieces.pop(0)
        return None


def _extend(buffer: bytearray | io.StringIO, pieces: list[str | bytes]) -> None:
    if isinstance(buffer, bytearray):
        buffer += b"".join(cast("list[bytes]", pieces))
    else:
        buffer.write("".join(cast("list[str]", pieces)))


class MessageQueue:
    """Received messages, oldest first, then the terminal event if any."""

    def __init__(self, high: int | None, low: int) -> None:
        self._items: collections.deque[str | bytes | _Assembling] = collections.deque()
        self.complete = 0
        self.terminal: CloseReceived | Failure | None = None
        self.high = high
        self.low = low
        self.paused = False
        # Set when taking a message ended a pause; the connection clears it.
        self.resumed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, fragment: Fragment) -> None:
        """Add a received fragment."""
        items = self._items
        if not fragment.first:
            tail = items[-1]
            assert isinstance(tail, _Assembling) and not tail.fin
            tail.add(fragment.data)
            if fragment.fin:
                tail.fin = True
                self._completed()
        elif fragment.fin:
            items.append(fragment.data)
            self.complete += 1
            if self.high is not None and self.complete > self.high:
                self.paused = True
        else:
            items.append(_Assembling(fragment))

    def _completed(self) -> None:
        self.complete += 1
        if self.high is not None and self.complete > self.high:
            self.paused = True

    def put_terminal(self, event: CloseReceived | Failure) -> None:
        """Add the close frame or failure; drop a message it cut short."""
        items = self._items
        if items:
            tail = items[-1]
            if isinstance(tail, _Assembling) and not tail.fin:
                items.pop()
        self.terminal = event

    @property
    def terminal_reached(self) -> bool:
        """True when the terminal event is all that is left."""
        return self.terminal is not None and not self._items

    def _taken(self) -> None:
        self.complete -= 1
        if self.paused and self.complete <= self.low:
            self.paused = False
            self.resumed = True

    def pop(self) -> str | bytes:
        """Take the complete message at the head (``complete`` must be > 0)."""
        assert self.complete > 0
        # Counted first: an interrupt after popleft() returns (CPython checks
        # for signals after a call) loses the message, never the count.
        self._taken()
        item = self._items.popleft()
        if isinstance(item, _Assembling):
            assert item.fin, "only the newest message may be incomplete"
            return item.take_all()
        return item

    def pop_piece(self) -> tuple[str | bytes, bool, bool] | None:
        """For recv_streaming: take the oldest frame of the head message not
        taken yet. Returns (data, first, fin), or None when none has arrived."""
        items = self._items
        if not items:
            return None
        head = items[0]
        if not isinstance(head, _Assembling):
            self._taken()
            items.popleft()
            return head, True, True
        data = head.take_oldest()
        if data is None:
            return None
        first = not head.started
        head.started = True
        fin = head.fin and not head.pieces
        if fin:
            self._taken()
            items.popleft()
        return data, first, fin
