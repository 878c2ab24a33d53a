"""Sending frames: the send lock, writes bounded by a timeout, and control
frames handed between threads.

:class:`FrameSender` is a part of :class:`~requests_ws.connection.ClientConnection`.
It owns the rule that frames never interleave: one lock, held by a fragmented
message from its first frame to its last; pongs owed while another thread
holds it are written by that thread between frames; a timeout that expires
after part of a frame was written fails the connection, so a half-written
frame is never followed by another.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import ConnectionClosed
from .frames import OP_BINARY, OP_CONT, OP_TEXT, CloseCode, Opcode
from .protocol import ClientProtocol, InvalidState

if TYPE_CHECKING:
    from .transport import SocketLike

__all__ = ["FrameSender"]

# Frames with a payload at least this large are written as header + payload
# (two writes) instead of being joined into one buffer.
_LARGE_WRITE = 16384


class FrameSender:
    """The sending half of a connection (a mixin of ClientConnection)."""

    socket: SocketLike
    protocol: ClientProtocol
    logger: logging.Logger | logging.LoggerAdapter[Any]
    _terminated: threading.Event
    _close_cause: BaseException | None
    _close_sent_at: float | None

    def _init_sending(self) -> None:
        self._send_lock = threading.Lock()
        self._pending_control: list[bytes] = []
        self._sock_timeout: float | None = None

    # Provided by ClientConnection.
    def _closed_exception(self) -> ConnectionClosed:
        raise NotImplementedError

    def _terminate(self) -> None:
        raise NotImplementedError

    def _fail_locally(self, code: int, reason: str, cause: BaseException | None = None) -> None:
        raise NotImplementedError

    def send(
        self,
        message: str
        | bytes
        | bytearray
        | memoryview
        | Iterable[str | bytes | bytearray | memoryview],
        text: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        """Send a message.

        ``str`` is sent as a text frame and bytes-like as a binary frame;
        ``text=True``/``False`` forces the opcode. An iterable of ``str`` or
        of bytes-like is sent as one fragmented message, a frame per item.
        Messages from concurrent threads never interleave.

        ``timeout`` bounds the whole call; on expiry raises TimeoutError. If
        part of a frame was already written, the connection cannot continue
        and fails (later calls raise ConnectionClosedError).

        Raises :class:`ConnectionClosed` once the close frame was sent, and
        :class:`TypeError` for anything else than the types above.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if isinstance(message, str):
            self._send_frame_locked(
                OP_BINARY if text is False else OP_TEXT, message.encode(), deadline
            )
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._send_frame_locked(OP_TEXT if text else OP_BINARY, message, deadline)
        elif isinstance(message, Mapping):
            raise TypeError("cannot send a mapping: send str, bytes-like or an iterable of them")
        elif isinstance(message, Iterable):
            self._send_fragments(iter(message), text, deadline)
        else:
            raise TypeError(
                f"cannot send {type(message).__name__}: send str, bytes-like or an iterable of them"
            )

    def _acquire_send_lock(self, deadline: float | None) -> None:
        if deadline is None:
            self._send_lock.acquire()
            return
        remaining = deadline - time.monotonic()
        if not self._send_lock.acquire(timeout=max(remaining, 0)):
            raise TimeoutError("timed out while waiting for another thread's send to finish")

    def _release_send_lock(self) -> None:
        try:
            if self._pending_control:
                self._flush_control(None)
        finally:
            self._send_lock.release()

    def _send_frame_locked(
        self, opcode: int, payload: bytes | bytearray | memoryview, deadline: float | None
    ) -> None:
        self._acquire_send_lock(deadline)
        try:
            self._write_data(opcode, payload, True, deadline)
        finally:
            self._release_send_lock()

    def _send_fragments(
        self,
        chunks: Iterator[str | bytes | bytearray | memoryview],
        text: bool | None,
        deadline: float | None,
    ) -> None:
        try:
            current = next(chunks)
        except StopIteration:
            return
        if isinstance(current, str):
            is_text = True
        elif isinstance(current, (bytes, bytearray, memoryview)):
            is_text = False
        else:
            raise TypeError(
                f"cannot send a fragment of type {type(current).__name__}: "
                "iterables must yield str or bytes-like"
            )
        opcode = (
            (OP_TEXT if text is not False else OP_BINARY)
            if is_text
            else (OP_TEXT if text else OP_BINARY)
        )
        self._acquire_send_lock(deadline)
        try:
            started = False
            while True:
                try:
                    following = next(chunks)
                    last = False
                except StopIteration:
                    following = b""
                    last = True
                except BaseException:
                    if started:
                        self._fail_locally(
                            CloseCode.INTERNAL_ERROR, "error while producing a fragmented message"
                        )
                    raise
                payload = self._fragment_bytes(current, is_text, started)
                self._write_data(OP_CONT if started else opcode, payload, last, deadline)
                started = True
                if last:
                    return
                current = following
                if self._pending_control:
                    self._flush_control(deadline)
        finally:
            self._release_send_lock()

    def _fragment_bytes(
        self, chunk: str | bytes | bytearray | memoryview, is_text: bool, started: bool
    ) -> bytes | bytearray | memoryview:
        if is_text and isinstance(chunk, str):
            return chunk.encode()
        if not is_text and isinstance(chunk, (bytes, bytearray, memoryview)):
            return chunk
        error = TypeError(
            "a fragmented message must be all str or all bytes-like, "
            f"got {type(chunk).__name__} after {'str' if is_text else 'bytes'}"
        )
        if started:
            self._fail_locally(CloseCode.INTERNAL_ERROR, "mixed fragment types")
        raise error

    def _write_data(
        self,
        opcode: int,
        payload: bytes | bytearray | memoryview,
        fin: bool,
        deadline: float | None,
    ) -> None:
        """Serialize and write a data frame; call with the send lock held."""
        if self._terminated.is_set():
            raise self._closed_exception()
        try:
            header, body = self.protocol.send_data(opcode, payload, fin)
        except InvalidState:
            raise self._closed_exception() from None
        if self.logger.isEnabledFor(logging.DEBUG):
            kind = {OP_TEXT: "TEXT", OP_BINARY: "BINARY", OP_CONT: "CONT"}[Opcode(opcode)]
            more = "" if fin else ", continued"
            self.logger.debug("> %s %d bytes%s", kind, len(payload), more)
        if len(body) < _LARGE_WRITE:
            self._write(header + body, deadline)
        else:
            self._write(header, deadline, more_follows=True)
            self._write(body, deadline, after_partial=True)

    def _write(
        self,
        data: bytes,
        deadline: float | None,
        *,
        more_follows: bool = False,
        after_partial: bool = False,
    ) -> None:
        """Write ``data``; call with the send lock held.

        A failure after the first byte of a frame was written fails the
        connection: the frame can never be completed.
        """
        sock = self.socket
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if timeout != self._sock_timeout:
            sock.settimeout(timeout)
            self._sock_timeout = timeout
        if timeout is None:
            try:
                sock.sendall(data)
            except OSError as exc:
                self._on_send_error(exc)
            return
        view = memoryview(data)
        written = 0
        total = len(view)
        try:
            while written < total:
                remaining = deadline - time.monotonic()  # type: ignore[operator]
                if remaining <= 0:
                    raise TimeoutError("timed out while sending")
                if remaining != self._sock_timeout:
                    sock.settimeout(remaining)
                    self._sock_timeout = remaining
                written += sock.send(view[written:])
        except TimeoutError as exc:
            if written or after_partial:
                self._fail_locally(
                    CloseCode.ABNORMAL_CLOSURE, "send timed out in the middle of a frame", exc
                )
                raise TimeoutError(
                    "timed out in the middle of a frame; the connection cannot continue"
                ) from exc
            raise TimeoutError("timed out while sending") from None
        except OSError as exc:
            self._on_send_error(exc)

    def _on_send_error(self, exc: OSError) -> None:
        if self._close_cause is None:
            self._close_cause = exc
        self._terminate()
        raise self._closed_exception() from exc

    def _send_control(self, frame: bytes, kind: str, data: bytes, *, force: bool = False) -> None:
        """Send a control frame now if the send lock is free, else hand it to
        the thread holding the lock (it sends it between frames)."""
        if self._send_lock.acquire(blocking=force):
            try:
                if self.logger.isEnabledFor(logging.DEBUG):
                    self.logger.debug("> %s %r", kind, data)
                self._write(frame, None)
            except (ConnectionClosed, TimeoutError):
                pass
            finally:
                self._release_send_lock()
        else:
            self._pending_control.append(frame)

    def _flush_control(self, deadline: float | None) -> None:
        while self._pending_control:
            frame = self._pending_control.pop(0)
            self._write(frame, deadline)

    def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat)."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        frame = self.protocol.send_pong(payload)
        self._acquire_send_lock(None)
        try:
            if self.protocol.close_sent is not None:
                raise self._closed_exception()
            self._write(frame, None)
        finally:
            self._release_send_lock()

    def _send_close_frame(self, frame: bytes, deadline: float | None = None) -> None:
        """Write the client's close frame, waiting for the send lock if needed."""
        self._close_sent_at = time.monotonic()
        if not frame:
            return
        try:
            self._acquire_send_lock(deadline)
        except TimeoutError:
            self._terminate()
            return
        try:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("> CLOSE %s", self.protocol.close_sent)
            self._write(frame, deadline)
        except (ConnectionClosed, TimeoutError, OSError):
            self._terminate()
        finally:
            self._release_send_lock()
