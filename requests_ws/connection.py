"""ClientConnection: a socket and a :class:`ClientProtocol`, driven by threads.

The rules, one owner per piece of state:

* **The state lock** (``_lock``, and ``_cond``, a Condition over it) guards the
  protocol object -- every call into ``ClientProtocol`` is made with it held,
  but for the reader's ``direct_buffer()`` (its docstring says why) --
  and all shared state of this module: the message queue
  (:class:`~requests_ws.messages.MessageQueue`), the read role, pings and
  keepalive, the closing deadlines, the owed control frames of the writer and
  ``_terminated``. It is held briefly and never across a wait on the socket,
  and a thread holding it never blocks on another lock.
* **The write side** belongs to the :class:`~requests_ws.sending.FrameWriter`:
  only the holder of its frame lock writes to the socket, one whole frame at a
  time; data messages also hold its message lock, but for a one-frame message
  sent while no fragmented message has begun (it cannot interleave with
  anything: the frame lock is enough). Order of acquisition: message lock,
  frame lock, state lock.
* **The right to receive** (``_receiving``, under the state lock) is held by
  the one thread inside ``recv()`` (for the call) or ``recv_streaming()``
  (until the message ends); another raises :class:`ConcurrencyError`.
* **The read side** belongs to the holder of the *read role* (``_reader``,
  under the state lock): only that thread waits on the socket for data, reads
  it, and feeds the protocol. ``recv()`` takes queued messages first and, when
  there are none, takes the role and reads in the caller's own thread, so a
  round trip costs no thread hand-off. The background thread takes the role
  only when no caller has wanted it for ``_GRACE`` seconds, or at once when
  ``ping()``, ``close()`` or a keepalive ping waits for an answer, or when a
  close frame is being answered; a caller that needs the role back wakes it
  through the socketpair and it hands the role over.
* **Time** is the background thread's one routine, ``_timers``: keepalive, the
  deadline of the closing handshake, and a server's close frame the
  application has not reached. It waits only for what is due next: an idle
  connection wakes nobody.
* **Interrupts** (``KeyboardInterrupt``, or any exception a signal handler
  raises) reach the main thread wherever CPython checks for signals,
  including just after any call returns -- ``acquire()`` among them. So every
  lock here is an RLock, for its owner check: a lock is taken inside the
  ``try`` whose ``finally`` gives it back, or with ``with``, and given back
  only if this thread holds it (an RLock's ``release()`` by another thread
  raises), so an interrupt cannot leave a lock held nor release another
  thread's (``FrameWriter.release_if_held``, written out in place on the
  hot paths, where the call would cost more than the rest). A read
  interrupted once bytes may have come in, or while they were being parsed,
  ends the connection: what was read is unknown, and the rest
  of the stream is never parsed after a hole. The queue counts a message
  before it removes it. A call that leaves by an exception gives up the read
  role if it still holds it (an interrupt as it took the lock back after
  reading).
* **Resources.** The background thread is the last owner of the file
  descriptors: after the connection ends it waits until nobody holds the read
  role or the frame lock, then closes the socket and the socketpair.

A server's close frame (or a protocol violation) is queued after the
messages that arrived before it. It is answered as soon as the application has
taken those messages and comes back to ``recv()`` -- at once when none were
queued and the application is not busy with a message it just took, so that
the replies it sends before its next ``recv()`` go out first -- and after
``close_timeout`` when the application never comes; the reply repeats the
server's code and reason.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ProtocolError,
)
from .frames import (
    OP_BINARY,
    OP_CONT,
    OP_TEXT,
    CloseCode,
    MaskedPayload,
    Opcode,
    check_close_code,
)
from .messages import MessageQueue
from .protocol import (
    ClientProtocol,
    CloseReceived,
    Failure,
    Fragment,
    InvalidState,
    Ping,
    Pong,
    State,
)
from .readiness import Readiness
from .sending import (
    CLOSE,
    CONTINUING,
    CONTROL_WRITE,
    PONG,
    WRITE_WOULD_BLOCK,
    FrameWriter,
    NotBegun,
    at_least,
)
from .tls_tunnel import TunnelledTLS, is_tunnelled_tls

if TYPE_CHECKING:
    import requests

    from .transport import SocketLike

__all__ = ["ClientConnection"]

_get_ident = threading.get_ident

# How long the application may be away from recv() before the background
# thread reads for it (pings are answered at most about this late).
_GRACE = 0.02
# While an application loops on recv(), how often the background thread looks
# whether it has stopped (a caller blocked in one recv() costs no wake-up).
_RECHECK = 0.25
# How long an owed control frame waits before the background thread tries
# to write it again when the socket could not take it.
_OWED_RETRY = 0.05
_READ_SIZE = 65536
# Read buffers kept for reuse by any connection (list.pop/append are atomic).
_READ_BUFFERS: list[memoryview] = []
_POOLED_BUFFERS = 16
_DIRECT_READ_SIZE = 262144
# Frames with a payload at least this large are written as header + payload.
_LARGE_WRITE = 16384
# A large payload is masked and written this many bytes at a time (a
# multiple of 4, small enough to stay in the processor's cache).
_MASK_PIECE = 262144

_NORMAL_CODES = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)
# A thread holding the message lock sends again: from the iterable it is
# sending, or from a logging handler's record of its own send. The message
# lock is an RLock (see "Interrupts"), so this would not even wait: with
# compression, the second message would overtake the first one's compressed
# frame and garble the peer's decompression context.
_SEND_IN_SEND = (
    "cannot send a message from inside a send() of the same thread "
    "(from the iterable being sent, or from a logging handler)"
)
_READ_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

# Who holds the read role.
_CALLER = "caller"
_BACKGROUND = "background"
# How the background thread waits (so a waker knows how to wake it).
_RUNNING, _POLLING, _PARKED, _PARKED_FOREVER = range(4)


class _PendingPing:
    """A ping waiting for its pong (in the ping table once on the wire)."""

    __slots__ = ("keepalive", "latency", "payload", "sent_at")

    def __init__(self, payload: bytes, sent_at: float, keepalive: bool = False) -> None:
        self.payload = payload
        self.sent_at = sent_at
        self.keepalive = keepalive
        self.latency: float | None = None


class ClientConnection:
    """A WebSocket connection to a server, usable from many threads.

    Built by :func:`requests_ws.connect`; do not create it directly except
    through ``create_connection=`` (a subclass is called with the same
    arguments).

    Attributes: ``id`` (a :class:`uuid.UUID`), ``request`` (the handshake's
    :class:`requests.PreparedRequest`), ``response`` (the 101
    :class:`requests.Response`), ``subprotocol``, ``local_address`` and
    ``remote_address`` (as the socket reports them), ``latency`` (seconds of
    the last ping round trip, 0 until one), ``logger`` (a
    :class:`logging.LoggerAdapter` whose records carry ``websocket``: this
    connection), ``socket`` and ``protocol``.
    """

    # Slots: CPython's attribute cache gives up on an instance with more than
    # 30 attributes in its dict, and this one is read on every frame.
    __slots__ = (
        "__weakref__",
        "_app_busy",
        "_background",
        "_background_waits",
        "_caller_left_at",
        "_close_cause",
        "_close_sent_at",
        "_cond",
        "_debug",
        "_discarding",
        "_epoch_seen",
        "_handoff",
        "_keepalive",
        "_lock",
        "_next_keepalive",
        "_owed_retry_at",
        "_pings",
        "_queue",
        "_raw_socket",
        "_reader",
        "_reader_epoch",
        "_reader_ident",
        "_readers_wanted",
        "_readiness",
        "_receiving",
        "_role_wanted",
        "_stream",
        "_terminal_at",
        "_terminated",
        "_tls",
        "_wake_r",
        "_wake_w",
        "_writer",
        "close_timeout",
        "id",
        "latency",
        "local_address",
        "logger",
        "ping_interval",
        "ping_timeout",
        "protocol",
        "remote_address",
        "request",
        "response",
        "socket",
        "subprotocol",
    )

    def __init__(
        self,
        sock: SocketLike,
        protocol: ClientProtocol,
        *,
        raw_socket: socket.socket | None = None,
        leftover: bytes = b"",
        request: requests.PreparedRequest | None = None,
        response: requests.Response | None = None,
        subprotocol: str | None = None,
        ping_interval: float | None = 20,
        ping_timeout: float | None = 20,
        close_timeout: float | None = 10,
        max_queue: int | tuple[int | None, int | None] | None = 16,
        logger: logging.Logger | logging.LoggerAdapter[Any] | str | None = None,
    ) -> None:
        self.socket = sock
        self.protocol = protocol
        self._raw_socket: Any = cast(Any, sock) if raw_socket is None else raw_socket
        self.request = request
        self.response = response
        self.subprotocol = subprotocol
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        if isinstance(max_queue, tuple):
            high, low = max_queue
        else:
            high, low = max_queue, None
        if high is not None and low is None:
            low = high // 4
        if logger is None:
            logger = logging.getLogger("requests_ws.client")
        elif isinstance(logger, str):
            logger = logging.getLogger(logger)
        if not isinstance(logger, logging.LoggerAdapter):
            logger = logging.LoggerAdapter(logger, {"websocket": self})
        self.logger: logging.Logger | logging.LoggerAdapter[Any] = logger
        levels: Any = logger.logger
        while isinstance(levels, logging.LoggerAdapter):
            levels = levels.logger
        # Whether to log frames is decided once, as websockets does: asking
        # the logger on every frame costs more than the rest of a round trip.
        self._debug = levels.isEnabledFor(logging.DEBUG)
        self.id = uuid.uuid4()
        self.latency = 0.0
        try:
            self.local_address: Any = self._raw_socket.getsockname()
        except OSError:
            self.local_address = None
        try:
            self.remote_address: Any = self._raw_socket.getpeername()
        except OSError:
            self.remote_address = None

        stream: Any
        if is_tunnelled_tls(sock):
            stream = TunnelledTLS(sock)
        else:
            stream = sock
            sock.settimeout(0.0)
        self._stream = stream
        # TLS layers may hold bytes that waiting on the descriptor cannot see.
        self._tls = isinstance(stream, (ssl.SSLSocket, TunnelledTLS))
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._readiness = Readiness(stream.fileno(), self._wake_r.fileno())

        # Everything below is guarded by the state lock.
        # An RLock for its owner check (see "Interrupts" above), not re-entry.
        self._lock = threading.RLock()
        # Waits use the Condition; plain critical sections take the lock
        # itself (the same lock, without the Condition's Python-level wrapper).
        self._cond = threading.Condition(self._lock)
        # Pings waiting for a pong, in wire order (see sending.py).
        self._pings: dict[bytes, _PendingPing] = {}
        self._writer = FrameWriter(
            stream, self._readiness.wait_writable, self._lock, self._on_cut, self._pings
        )
        self._queue = MessageQueue(high, 0 if low is None else low)
        self._reader: str | None = None
        self._reader_ident: int | None = None
        self._reader_epoch = 0
        self._epoch_seen = -1
        self._caller_left_at = time.monotonic()
        self._role_wanted = 0
        self._readers_wanted = 0
        self._background_waits = _RUNNING
        self._terminated = False
        self._close_cause: BaseException | None = None
        self._close_sent_at: float | None = None
        self._terminal_at: float | None = None
        self._keepalive: _PendingPing | None = None
        self._next_keepalive = None if ping_interval is None else time.monotonic() + ping_interval
        self._owed_retry_at = 0.0
        # Between recv() returning a message and the application's next
        # recv(): replies it sends meanwhile go out before a close frame.
        self._app_busy = False
        # Dropping the rest of a message that arrived while closing with a full queue.
        self._discarding = False
        # The right to call recv() / recv_streaming(): one caller at a time.
        self._receiving = False
        # A whole message recv()'s short cut read (see _read_once), until
        # _next() hands it out: an interrupt in between cannot lose it.
        self._handoff: str | bytes | None = None

        if leftover:
            with self._lock:
                protocol.receive_data(leftover)
                self._dispatch_locked(protocol.events_received())

        self._background = threading.Thread(
            target=self._run_background, name=f"requests_ws-{self.id.hex[:8]}", daemon=True
        )
        self._background.start()

    # -- public state --------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection is closed (close frames exchanged or TCP gone)."""
        return self._terminated

    @property
    def state(self) -> State:
        """OPEN, CLOSING or CLOSED."""
        if self._terminated:
            return State.CLOSED
        return self.protocol.state

    @property
    def close_code(self) -> int | None:
        """The close code received, 1006 after an abnormal closure, None while open."""
        if not self._terminated:
            return None
        rcvd = self.protocol.close_rcvd
        return CloseCode.ABNORMAL_CLOSURE if rcvd is None else rcvd.code

    @property
    def close_reason(self) -> str | None:
        """The close reason received, or None while open."""
        if not self._terminated:
            return None
        rcvd = self.protocol.close_rcvd
        return "" if rcvd is None else rcvd.reason

    # -- context manager and iteration ---------------------------------------

    def __enter__(self) -> ClientConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close(CloseCode.INTERNAL_ERROR)

    def __iter__(self) -> ClientConnection:
        """Iterate over messages until a normal closure (ConnectionClosedError otherwise)."""
        return self

    def __next__(self) -> str | bytes:
        try:
            return self.recv()
        except ConnectionClosedOK:
            raise StopIteration from None

    # -- receiving -----------------------------------------------------------

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> str | bytes:
        """Receive the next message.

        Returns ``str`` for a text message and ``bytes`` for a binary one;
        ``decode=True`` decodes binary messages as UTF-8, ``decode=False``
        returns text messages as UTF-8 bytes. ``timeout=None`` waits forever,
        ``timeout=0`` returns a message already received or readable at once.
        On timeout raises :class:`TimeoutError` and loses nothing: a partly
        received message stays queued for the next call.

        Raises :class:`ConnectionClosedOK` / :class:`ConnectionClosedError`
        once the connection is closed and every earlier message has been
        returned, and :class:`ConcurrencyError` when another thread is already
        in ``recv()``.
        """
        message = self._next(None if timeout is None else time.monotonic() + timeout, False)
        if decode is None:
            return message  # type: ignore[return-value]
        return _convert(message, decode)  # type: ignore[arg-type]

    def recv_streaming(self, decode: bool | None = None) -> Iterator[str | bytes]:
        """Yield the fragments of the next message as they arrive.

        Consecutive fragments that arrived before the caller asked may be
        joined. Holds the right to receive until the message ends: another
        thread's ``recv()`` meanwhile raises :class:`ConcurrencyError`.
        """
        with self._lock:
            if self._receiving:
                raise ConcurrencyError(
                    "cannot call recv_streaming while another thread is already running "
                    "recv or recv_streaming"
                )
            self._receiving = True
        try:
            while True:
                piece = self._next(None, True)
                assert isinstance(piece, tuple)
                data, _first, fin = piece
                yield data if decode is None else _convert(data, decode)
                if fin:
                    return
        finally:
            # No lock here: this may run as the generator is finalized by a
            # garbage collection, in any thread, even one holding the state
            # lock. Only the holder clears the flag, and one store is atomic.
            self._receiving = False

    def _next(
        self, deadline: float | None, streaming: bool
    ) -> str | bytes | tuple[str | bytes, bool, bool]:
        """Take the next message (or, streaming, the next piece of one),
        reading in this thread when nothing is queued. Unless streaming (then
        recv_streaming holds it), takes the right to receive for the call."""
        cond = self._cond
        queue = self._queue
        lock = self._lock
        claimed = False
        try:
            lock.acquire()
            if not streaming:
                if self._receiving:
                    raise ConcurrencyError(
                        "cannot call recv while another thread is already running recv "
                        "or recv_streaming"
                    )
                self._receiving = claimed = True
            # Back in recv(): a close frame queued next may be answered now.
            self._app_busy = False
            while True:
                handoff = self._handoff
                if handoff is not None:
                    # A whole message recv()'s short cut read, not queued.
                    self._handoff = None
                    self._app_busy = True
                    return (handoff, True, True) if streaming else handoff
                if queue.complete and not streaming:
                    message = queue.pop()
                    if queue.resumed:
                        self._after_take_locked()
                    self._app_busy = True
                    return message
                if streaming and len(queue):
                    piece = queue.pop_piece()
                    self._after_take_locked()
                    if piece is not None:
                        self._app_busy = piece[2]
                        return piece
                if queue.terminal is not None and queue.terminal_reached:
                    cond.release()
                    try:
                        self._reach_terminal(deadline)
                    finally:
                        cond.acquire()
                    # Closed, or closing past the caller's deadline (the
                    # background thread enforces close_timeout from here).
                    raise self._closed_exception()
                if self._terminated:
                    raise self._closed_exception()
                if self._reader is None:
                    assert self._reader_ident is None, "one reader at a time"
                    self._reader = _CALLER
                    self._reader_ident = _get_ident()
                    self._reader_epoch += 1
                    cond.release()
                    try:
                        self._read_as_caller(deadline, streaming)
                    finally:
                        cond.acquire()
                        self._release_role_locked()
                    continue
                # The background thread (or close()) reads: ask for the role.
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("timed out while waiting for a message")
                self._role_wanted += 1
                try:
                    # In the try: an interrupt as the wake-up byte's send()
                    # returns must not leave the caller counted.
                    self._wake_background_locked()
                    cond.wait(remaining)
                finally:
                    self._retake_lock()
                    self._role_wanted -= 1
        except BaseException:
            self._give_back_left_role()
            raise
        finally:
            if claimed:
                self._receiving = False
            try:
                lock.release()
            except RuntimeError:
                pass  # not held: an interrupt while waiting to take it back

    def _after_take_locked(self) -> None:
        queue = self._queue
        if queue.resumed:
            queue.resumed = False
            # Reading resumes; a pong missed while paused was not the peer's fault.
            keepalive = self._keepalive
            if keepalive is not None:
                keepalive.sent_at = time.monotonic()
            self._wake_background_locked()

    def _take_role_locked(self, reader: str) -> None:
        assert self._reader is None, "one reader at a time"
        self._reader = reader
        self._reader_ident = _get_ident()

    def _retake_lock(self) -> None:
        """After ``cond.wait()``: take the state lock back if an interrupt
        left this thread without it (Condition.wait gives the lock up before
        its own ``try``). The caller's ``finally`` releases it."""
        lock = self._lock
        if not lock._is_owned():  # type: ignore[attr-defined]
            lock.acquire()

    def _give_back_left_role(self) -> None:
        """On the way out of _next() or _wait_closed() by an exception: an
        interrupt as the state lock was given up for reading, or taken back
        after it, leaves this thread holding the read role as a caller. Give
        it up now -- nobody else can, and until then nobody reads (pings go
        unanswered, the socket is never closed). Takes the state lock if this
        thread does not hold it; the caller's ``finally`` releases it."""
        if self._reader != _CALLER or self._reader_ident != _get_ident():
            return
        self._retake_lock()
        self._release_role_locked()

    def _release_role_locked(self) -> None:
        assert self._reader_ident == _get_ident(), "released by its holder"
        self._reader = None
        self._reader_ident = None
        self._caller_left_at = time.monotonic()
        if self._background_waits == _PARKED_FOREVER or self._readers_wanted or self._terminated:
            self._cond.notify_all()

    def _read_as_caller(self, deadline: float | None, streaming: bool) -> None:
        """Holding the read role: read until the queue (or the hand-off slot,
        ``_handoff``) has something for the caller, the connection ends, or
        ``deadline`` passes (TimeoutError)."""
        readiness = self._readiness
        read_poll = readiness.read_poll
        stream = self._stream
        tls = self._tls
        take = not streaming
        polled = False
        while True:
            if not (tls and stream.pending()):
                if deadline is None:
                    if read_poll is not None:
                        read_poll.poll()  # returns when readable (or in error)
                    elif not readiness.wait_readable(None):
                        continue
                else:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        if polled:
                            raise TimeoutError("timed out while waiting for a message")
                        timeout = 0
                    if not readiness.wait_readable(timeout):
                        raise TimeoutError("timed out while waiting for a message")
            polled = True
            # Owed pongs: begun only if the socket takes them now (else the
            # background thread retries), so this never waits on a writer.
            write_deadline = None if deadline is None else at_least(deadline, CONTROL_WRITE)
            if self._read_once(0.0, write_deadline, streaming, take):
                return

    def _read_once(
        self,
        begin_deadline: float | None,
        write_deadline: float | None,
        streaming: bool = False,
        take: bool = False,
    ) -> bool:
        """Read once (holding the read role) and act on what was parsed.

        Returns True when the queue holds something for a reader (a complete
        message, a piece when ``streaming``, or the terminal event), or the
        connection ended. With ``take`` (a caller in recv() that found the
        queue empty), a message that came whole in this read skips the queue:
        it waits in ``_handoff``, set under the state lock that parsed it, so
        an interrupt before recv() returns cannot lose it.
        """
        assert self._reader_ident == _get_ident(), "read only with the read role"
        protocol = self.protocol
        # Without the state lock: see ClientProtocol.direct_buffer.
        direct = protocol.direct_buffer()
        view = None
        # Set just before recv_into() is called: an interrupt before that
        # has read nothing, and the connection goes on.
        reading = False
        try:
            if direct is not None:
                limit = min(len(direct), _DIRECT_READ_SIZE)
                reading = True
                size = self._stream.recv_into(direct, limit)
            else:
                # Read buffers are shared through a pool and held only during
                # a read: an idle connection holds none.
                try:
                    view = _READ_BUFFERS.pop()
                except IndexError:
                    view = memoryview(bytearray(_READ_SIZE))
                reading = True
                size = self._stream.recv_into(view)
        except _READ_WOULD_BLOCK:
            if view is not None:
                _READ_BUFFERS.append(view)
            return False
        except OSError as exc:
            if view is not None:
                _READ_BUFFERS.append(view)
            self._terminate(exc, eof=True)
            return True
        except BaseException as exc:
            # An interrupt here may have come after bytes were read (CPython
            # checks for signals as recv_into() returns): they are lost.
            if reading:
                self._on_read_cut(exc)
            raise
        finally:
            if direct is not None:
                direct.release()
        queue = self._queue
        lock = self._lock
        ready: bool
        # Set once what was read is all parsed: an interrupt after that (as
        # the lock is released) loses nothing, and the connection goes on.
        fed = False
        try:
            # The lock is taken inside the try whose finally gives it back,
            # and given back only if this thread holds it (see "Interrupts").
            try:
                lock.acquire()
                if size == 0:
                    eof = True
                    ready = True
                else:
                    eof = False
                    message = None
                    if view is None:
                        protocol.direct_received(size)
                    elif take and not self._discarding:
                        # The queue is empty (the caller looked) and only this
                        # thread feeds it: a whole message may skip it.
                        message = protocol.receive_message(view[:size])
                    else:
                        protocol.receive_data(view[:size])  # copies what it keeps
                    if message is not None:
                        if self._debug:
                            fragment = Fragment(message, type(message) is str, True, True)
                            self.logger.debug("< %s", _describe(fragment))
                        # Kept in this critical section: an interrupt from here
                        # until _next() takes it leaves it for the next call.
                        self._handoff = message
                        ready = True
                    else:
                        events = protocol.events_received()
                        if events:
                            self._dispatch_locked(events)
                        ready = (
                            queue.complete > 0
                            or queue.terminal is not None
                            or self._terminated
                            or (streaming and len(queue) > 0)
                        )
                fed = True
                owed = bool(self._writer.owed)
            finally:
                try:
                    lock.release()
                except RuntimeError:
                    pass  # not held: interrupted while waiting for it
        except BaseException as exc:
            # Interrupted while feeding the protocol: what was read is unknown.
            if not fed:
                self._on_read_cut(exc)
            raise
        if view is not None and len(_READ_BUFFERS) < _POOLED_BUFFERS:
            _READ_BUFFERS.append(view)
        if owed:
            try:
                self._writer.flush_owed(begin_deadline, write_deadline)
            except (OSError, TimeoutError):
                pass  # the frame was cut: the connection has ended
        if eof:
            self._terminate(None, eof=True)
            return True
        return ready

    def _dispatch_locked(self, events: list[Any]) -> None:
        """Act on parsed events: queue data and the terminal event, owe
        pongs, acknowledge pings. Called with the state lock held."""
        queue = self._queue
        debug = self._debug
        protocol = self.protocol
        notify = False
        for event in events:
            kind = type(event)
            if kind is Fragment:
                if debug:
                    self.logger.debug("< %s", _describe(event))
                if self._discarding or (
                    event.first and queue.paused and protocol.close_sent is not None
                ):
                    # Closing with a full queue: still read, for the close
                    # frame and the end of stream, but keep no more messages.
                    self._discarding = not event.fin
                    continue
                queue.put(event)
                if event.fin and self._role_wanted:
                    notify = True
            elif kind is Ping:
                if debug:
                    self.logger.debug("< PING %r", event.data)
                if protocol.close_sent is None:
                    # Only the latest ping needs its pong (RFC 6455 5.5.3).
                    self._writer.owed[PONG] = protocol.send_pong(event.data)
            elif kind is Pong:
                if debug:
                    self.logger.debug("< PONG %r", event.data)
                notify |= self._acknowledge_locked(event.data)
            else:
                if debug:
                    self.logger.debug("< %s", _describe(event))
                queue.put_terminal(event)
                self._terminal_at = time.monotonic()
                if queue.terminal_reached and not self._app_busy and self._handoff is None:
                    self._answer_terminal_locked()
                notify = True
        if notify:
            self._cond.notify_all()

    def _answer_terminal_locked(self) -> None:
        """Owe the close frame that answers the server's close or failure, once."""
        protocol = self.protocol
        event = self._queue.terminal
        if protocol.close_sent is not None or event is None or self._terminated:
            return
        if isinstance(event, Failure):
            frame = protocol.fail(event.code, event.reason)
            if self._close_cause is None:
                self._close_cause = event.error
            self.logger.debug("! failing connection with code %d: %s", event.code, event.reason)
        else:
            assert isinstance(event, CloseReceived)
            rcvd = event.close
            frame = protocol.send_close(rcvd.code, rcvd.reason)
        self._owe_close_locked(frame)

    def _owe_close_locked(self, frame: bytes, wake: bool = True) -> None:
        self._close_sent_at = time.monotonic()
        owed = self._writer.owed
        owed[CLOSE] = frame
        owed.drop_ping()
        if self._debug:
            self.logger.debug("> CLOSE %s", self.protocol.close_sent)
        if wake:
            # Reading goes on until the server closes TCP.
            self._wake_background_locked()

    def _reach_terminal(self, caller_deadline: float | None) -> None:
        """The application reached the server's close or a failure: answer it
        and wait for the end of the connection, bounded by close_timeout and by
        the caller's own deadline (then the background thread ends it)."""
        with self._lock:
            self._answer_terminal_locked()
        deadline = self._close_deadline()
        self._flush_owed_quietly(deadline)
        if caller_deadline is not None and (deadline is None or caller_deadline < deadline):
            self._wait_closed(caller_deadline, end_anyway=False)
        else:
            self._wait_closed(deadline)

    def _flush_owed_quietly(self, deadline: float | None) -> None:
        """Write owed frames; a failure has ended the connection already."""
        try:
            self._writer.flush_owed(deadline, at_least(deadline, CONTROL_WRITE))
        except (OSError, TimeoutError):
            pass

    # -- sending -------------------------------------------------------------

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
        of bytes-like is sent as one fragmented message, each item as a frame
        as soon as the iterable yields it (then an empty final frame).
        Messages from concurrent threads never interleave.

        A message is sent whole or not begun: when ``timeout`` expires before
        its first byte, TimeoutError is raised and the connection is as it
        was; when anything interrupts it later (the timeout, an exception,
        ``KeyboardInterrupt``), the connection fails and later calls raise
        :class:`ConnectionClosedError`.

        Raises :class:`ConnectionClosed` once the connection is closing or
        closed, and :class:`TypeError` for anything but the types above.
        """
        if timeout is None and text is None and not self.protocol.extensions:
            # The common case, with nothing to wait for but the locks.
            kind = type(message)
            if kind is str:
                payload = message.encode()  # type: ignore[union-attr]
                if len(payload) >= _LARGE_WRITE or not self._send_small(OP_TEXT, payload):
                    self._send_whole(OP_TEXT, payload, None)
                return
            if kind is bytes:
                if len(message) >= _LARGE_WRITE or not self._send_small(OP_BINARY, message):  # type: ignore[arg-type]
                    self._send_whole(OP_BINARY, message, None)  # type: ignore[arg-type]
                return
        deadline = None if timeout is None else time.monotonic() + timeout
        if isinstance(message, str):
            opcode = OP_BINARY if text is False else OP_TEXT
            self._send_whole(opcode, message.encode(), deadline)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._send_whole(OP_TEXT if text else OP_BINARY, message, deadline)
        elif isinstance(message, Mapping):
            raise TypeError("cannot send a mapping: send str, bytes-like or an iterable of them")
        elif isinstance(message, Iterable):
            self._send_fragments(iter(message), text, deadline)
        else:
            raise TypeError(
                f"cannot send {type(message).__name__}: send str, bytes-like or an iterable of them"
            )

    def _send_small(self, opcode: int, payload: bytes) -> bool:
        """Send a message of one small frame with no deadline and no extension,
        in fewer steps than _send_whole; return False, having done nothing,
        when another thread is inside a fragmented message (then the caller
        waits for the message lock).

        One frame cannot interleave with another message's frames, so this
        takes only the frame lock -- unless a fragmented message has begun.
        """
        writer = self._writer
        frame_lock = writer.frame_lock
        lock = self._lock
        again = True
        # Each lock is taken inside the try whose finally gives it back, and
        # given back only if this thread holds it (see "Interrupts").
        try:
            try:
                frame_lock.acquire()
                try:
                    lock.acquire()
                    if writer.ended:
                        raise self._closed_exception()
                    try:
                        frame = self.protocol.send_small(opcode, payload)
                    except InvalidState:
                        raise self._closed_exception() from None
                finally:
                    try:
                        lock.release()
                    except RuntimeError:
                        pass
                if frame is None:
                    return False
                if self._debug:
                    kind = "TEXT" if opcode == OP_TEXT else "BINARY"
                    self.logger.debug("> %s %s", kind, _preview(payload))
                try:
                    writer.frame_open = True  # see FrameWriter: open until its last byte
                    try:
                        sent = self._stream.send(frame)
                    except WRITE_WOULD_BLOCK:
                        sent = 0
                    if sent < len(frame) or writer.buffered:
                        writer.write(frame[sent:], None, begin_by=CONTINUING if sent else None)
                    else:
                        writer.frame_open = False
                except OSError as exc:
                    if not self._terminated:
                        self._on_cut(exc)
                    raise self._closed_exception() from exc
                except BaseException as exc:
                    # Interrupted around the write: how much went out is unknown.
                    self._on_cut(exc)
                    raise
            finally:
                try:
                    if (writer.frame_open or writer.owed) and frame_lock._is_owned():  # type: ignore[attr-defined]
                        # False until settle_held() returns: when it raises
                        # (an interrupt as it waits to write the owed frames),
                        # the way out must not wait for them again.
                        again = False
                        again = writer.settle_held(None)
                finally:
                    # Even when settle_held() raises (an interrupt as it
                    # writes the owed frames): never leave the lock held.
                    try:
                        frame_lock.release()
                    except RuntimeError:
                        again = False  # not held: interrupted while waiting for it
        finally:
            if again and writer.owed:
                writer.flush_owed(None, None)
        return True

    def _send_whole(
        self, opcode: int, payload: bytes | bytearray | memoryview, deadline: float | None
    ) -> None:
        writer = self._writer
        if writer.message_lock._is_owned():  # type: ignore[attr-defined]
            raise ConcurrencyError(_SEND_IN_SEND)
        try:
            writer.acquire(writer.message_lock, deadline)
            self._send_frame(opcode, payload, True, deadline)
        finally:
            writer.release_if_held(writer.message_lock)

    def _send_frame(
        self,
        opcode: int,
        payload: bytes | bytearray | memoryview,
        fin: bool,
        deadline: float | None,
    ) -> None:
        """Write one data frame; call with the message lock held."""
        writer = self._writer
        try:
            writer.acquire(writer.frame_lock, deadline)
            self._check_sendable()
            # Compressing a message, or starting a fragmented one, changes the
            # protocol's state: wait until the frame can begin before that.
            changes_state = bool(self.protocol.extensions) or not fin
            if changes_state and not writer.begin(deadline):
                raise TimeoutError("timed out before sending: nothing was sent")
            try:
                with self._lock:
                    if self._terminated:
                        raise self._closed_exception()
                    try:
                        body: bytes | MaskedPayload
                        if type(payload) is bytes and len(payload) >= 65536 and not changes_state:
                            header, body = self.protocol.send_large(opcode, payload, fin)
                        else:
                            header, body = self.protocol.send_data(opcode, payload, fin)
                    except InvalidState:
                        raise self._closed_exception() from None
            except (ConnectionClosed, ProtocolError):
                raise
            except BaseException as exc:
                self._on_cut(exc)  # interrupted while the compressor took the message
                raise
            if self._debug:
                kind = {OP_TEXT: "TEXT", OP_BINARY: "BINARY", OP_CONT: "CONT"}[Opcode(opcode)]
                self.logger.debug(
                    "> %s %s%s", kind, _preview(payload), "" if fin else ", continued"
                )
            try:
                if type(body) is bytes and len(body) < _LARGE_WRITE:
                    writer.write(header + body, deadline)
                else:
                    self._write_header_and_body(header, body, deadline)
            except NotBegun as exc:
                if changes_state:
                    self._on_cut(exc)
                    raise TimeoutError(
                        "timed out before sending; the connection cannot continue"
                    ) from None
                raise
            except TimeoutError:
                raise TimeoutError(
                    "timed out in the middle of a frame; the connection cannot continue"
                ) from None
            except OSError as exc:
                raise self._closed_exception() from exc
        finally:
            writer.release_frame_lock(deadline)

    def _write_header_and_body(
        self, header: bytes, body: bytes | MaskedPayload, deadline: float | None
    ) -> None:
        """Write a large frame as a header and a body (masked piece by piece
        when it is a MaskedPayload); an interrupt in between (or any failure
        but a timeout before the first byte) cuts the frame."""
        writer = self._writer
        try:
            # The frame stays open from the header's first byte to the body's
            # last: a cut anywhere in between ends the writer.
            writer.write(header, deadline, ends_frame=False)
            if isinstance(body, MaskedPayload):
                for piece in body.pieces(_MASK_PIECE):
                    writer.write(piece, deadline, begin_by=CONTINUING, ends_frame=False)
                writer.frame_open = False
            else:
                writer.write(body, deadline, begin_by=CONTINUING)
        except NotBegun:
            raise
        except BaseException as exc:
            if not self._terminated:
                self._on_cut(exc)
            raise

    def _send_fragments(
        self,
        chunks: Iterator[str | bytes | bytearray | memoryview],
        text: bool | None,
        deadline: float | None,
    ) -> None:
        writer = self._writer
        if writer.message_lock._is_owned():  # type: ignore[attr-defined]
            raise ConcurrencyError(_SEND_IN_SEND)
        started = False
        try:
            writer.acquire(writer.message_lock, deadline)
            is_text = False
            for chunk in chunks:
                if not started:
                    if isinstance(chunk, str):
                        is_text = True
                    elif not isinstance(chunk, (bytes, bytearray, memoryview)):
                        raise TypeError(
                            f"cannot send a fragment of type {type(chunk).__name__}: "
                            "iterables must yield str or bytes-like"
                        )
                    opcode = (
                        (OP_BINARY if text is False else OP_TEXT)
                        if is_text
                        else (OP_TEXT if text else OP_BINARY)
                    )
                    self._send_frame(opcode, _fragment_bytes(chunk, is_text), False, deadline)
                    started = True
                else:
                    self._send_frame(OP_CONT, _fragment_bytes(chunk, is_text), False, deadline)
            if started:
                self._send_frame(OP_CONT, b"", True, deadline)
        except BaseException as exc:
            if started:
                self._fail(
                    CloseCode.INTERNAL_ERROR, "the fragmented message could not be finished", exc
                )
            raise
        finally:
            writer.release_if_held(writer.message_lock)

    def _check_sendable(self) -> None:
        if self._terminated or self.protocol.close_sent is not None or self._writer.ended:
            with self._lock:
                raise self._closed_exception()

    def pong(self, data: str | bytes | bytearray | memoryview = b"") -> None:
        """Send an unsolicited pong (a unidirectional heartbeat).

        Raises :class:`ConnectionClosed` once the connection is closing or closed.
        """
        payload = _control_payload(data, "pong")
        with self._lock:
            if self._terminated or self.protocol.close_sent is not None:
                raise self._closed_exception()
            frame = self.protocol.send_pong(payload)
        self._write_control(frame, None)

    def _write_control(self, frame: bytes, deadline: float | None) -> None:
        writer = self._writer
        try:
            writer.acquire(writer.frame_lock, deadline)
            self._check_sendable()
            try:
                writer.write(frame, at_least(deadline, CONTROL_WRITE), begin_by=deadline)
            except TimeoutError:
                raise  # NotBegun: nothing sent; or cut: the connection has ended
            except OSError as exc:
                raise self._closed_exception() from exc
        finally:
            writer.release_frame_lock(deadline)

    def _on_read_cut(self, error: BaseException) -> None:
        """A read was interrupted while bytes came in or were being parsed:
        what the peer sent cannot be trusted to be whole, so the connection
        ends at once (1006), as for a cut frame on the write side."""
        self.logger.debug("! read cut short: %r", error)
        self._terminate(error)

    def _on_cut(self, error: BaseException) -> None:
        """A frame was interrupted after its first byte: nothing more can be
        written, so the connection ends at once (1006)."""
        self.logger.debug("! frame cut short: %r", error)
        self._terminate(error)

    def _fail(self, code: int, reason: str, cause: BaseException | None = None) -> None:
        """Fail the connection from the client side with a close frame."""
        with self._lock:
            if self._terminated:
                return
            if cause is not None and self._close_cause is None:
                self._close_cause = cause
            frame = self.protocol.fail(code, reason)
            if frame:
                self._owe_close_locked(frame)
        self._flush_owed_quietly(self._close_deadline())

    # -- pings ---------------------------------------------------------------

    def ping(
        self, data: str | bytes | bytearray | memoryview = b"", timeout: float | None = None
    ) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        Updates ``latency``. Raises :class:`TimeoutError` when no pong arrives
        within ``timeout``, :class:`ConcurrencyError` when a ping with the same
        payload is pending, and :class:`ConnectionClosed` when the connection
        closes before the pong.

        A pong acknowledges its ping and every ping written before it, never
        one not yet on the wire. The default payload is random; with an
        explicit one, a late pong for an earlier ping that timed out cannot be
        told from the answer to a new ping with the same payload once that one
        has been written (RFC 6455 5.5.3: a pong answers the latest ping).
        """
        payload = _control_payload(data, "ping")
        deadline = None if timeout is None else time.monotonic() + timeout
        cond = self._cond
        writer = self._writer
        with self._lock:
            # Checked again below; here so that bad calls fail before any wait.
            if self._terminated or self.protocol.close_sent is not None:
                raise self._closed_exception()
            self._check_ping_payload_locked(payload)
        pending: _PendingPing | None = None
        try:
            writer.acquire(writer.frame_lock, deadline)
            with self._lock:
                if self._terminated or self.protocol.close_sent is not None or writer.ended:
                    raise self._closed_exception()
                self._check_ping_payload_locked(payload)
                if not payload:
                    payload = os.urandom(4)
                    while self._ping_payload_taken_locked(payload):
                        payload = os.urandom(4)
                frame = self.protocol.send_ping(payload)
                # Joins the table now, as its frame goes out under the frame
                # lock: the table's order is the wire order, and a pong read
                # before this ping was written cannot acknowledge it.
                pending = _PendingPing(payload, time.monotonic())
                self._pings[payload] = pending
            try:
                writer.write(frame, at_least(deadline, CONTROL_WRITE), begin_by=deadline)
            except TimeoutError:
                raise  # NotBegun: nothing sent; or cut: the connection has ended
            except OSError as exc:
                raise self._closed_exception() from exc
        except BaseException:
            if pending is not None:
                with self._lock:
                    self._forget_ping_locked(pending)
            raise
        finally:
            writer.release_frame_lock(deadline)
        assert pending is not None
        lock = self._lock
        try:
            # Not ``with``: an interrupt as wait() gives the lock up (before
            # its own ``try``) leaves it not held, and the ``with`` exit's
            # release() would raise RuntimeError over the interrupt.
            try:
                lock.acquire()  # in the try: see "Interrupts"
                self._readers_wanted += 1
                try:
                    self._wake_background_locked()  # in the try: see _next()
                    while pending.latency is None:
                        if self._terminated:
                            raise self._closed_exception()
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise TimeoutError("no pong received in time")
                        cond.wait(remaining)
                finally:
                    self._retake_lock()
                    self._readers_wanted -= 1
            finally:
                FrameWriter.release_if_held(lock)  # not held: an interrupt as wait() gave it up
            return pending.latency
        finally:
            with self._lock:
                self._forget_ping_locked(pending)

    def _check_ping_payload_locked(self, payload: bytes) -> None:
        if payload and self._ping_payload_taken_locked(payload):
            raise ConcurrencyError("a ping with the same payload is already waiting for its pong")

    def _ping_payload_taken_locked(self, payload: bytes) -> bool:
        """Whether a ping with ``payload`` waits (on the wire, or owed)."""
        owed = self._writer.owed.ping_waiter
        return payload in self._pings or (owed is not None and owed[0] == payload)

    def _forget_ping_locked(self, pending: _PendingPing) -> None:
        if self._pings.get(pending.payload) is pending:
            del self._pings[pending.payload]

    def _acknowledge_locked(self, data: bytes) -> bool:
        """A pong acknowledges its ping and every ping sent before it."""
        pings = self._pings
        if data not in pings:
            return False
        now = time.monotonic()
        for payload, pending in list(pings.items()):
            pending.latency = now - pending.sent_at
            self.latency = pending.latency
            if pending.keepalive:
                self._keepalive = None
            del pings[payload]
            if payload == data:
                break
        return True

    # -- closing -------------------------------------------------------------

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Perform the closing handshake and release the socket.

        Waits up to ``close_timeout`` for the server's close frame and for TCP
        to close, then drops the connection anyway (``close_timeout=0``: no
        wait). Idempotent and safe from any thread; a thread blocked in
        ``recv()`` is woken and gets :class:`ConnectionClosed`. During another
        thread's fragmented ``send()`` the connection fails with 1011 instead.
        Invalid codes (1005, 1006, 1015, below 1000, above 4999) raise
        :class:`ProtocolError` and leave the connection open.
        """
        check_close_code(code)
        if len(reason.encode()) > 123:
            raise ProtocolError("close reason too long: at most 123 bytes of UTF-8")
        deadline = self._close_deadline()
        with self._lock:
            if not self._terminated and self.protocol.close_sent is None:
                if self.protocol.sending_fragments:
                    frame = self.protocol.fail(
                        CloseCode.INTERNAL_ERROR, "close() during a fragmented message"
                    )
                else:
                    frame = self.protocol.send_close(code, reason)
                # Written below before anyone times the closing handshake.
                self._owe_close_locked(frame, wake=False)
        self._flush_owed_quietly(deadline)
        self._wait_closed(deadline)
        if self._background is not threading.current_thread():
            self._background.join(None if deadline is None else max(deadline - time.monotonic(), 0))

    def _close_deadline(self) -> float | None:
        timeout = self.close_timeout
        return None if timeout is None else time.monotonic() + timeout

    def _wait_closed(self, deadline: float | None, end_anyway: bool = True) -> None:
        """Wait for the end of the connection until ``deadline``, reading in
        this thread when nobody else reads; then end it anyway (unless not
        ``end_anyway``: a caller's own deadline, not the closing one)."""
        cond = self._cond
        lock = self._lock
        try:
            lock.acquire()  # in the try: see "Interrupts" (as in _next)
            while not self._terminated:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                if self._reader is None:
                    self._take_role_locked(_CALLER)
                    cond.release()
                    try:
                        self._read_until_end(deadline)
                    finally:
                        cond.acquire()
                        self._release_role_locked()
                    continue
                self._readers_wanted += 1
                try:
                    self._wake_background_locked()  # in the try: see _next()
                    cond.wait(remaining)
                finally:
                    self._retake_lock()
                    self._readers_wanted -= 1
        except BaseException:
            self._give_back_left_role()
            raise
        finally:
            FrameWriter.release_if_held(lock)
        if end_anyway:
            self._terminate(TimeoutError("timed out while closing the connection"))

    def _read_until_end(self, deadline: float | None) -> None:
        stream = self._stream
        while not self._terminated:
            if not (self._tls and stream.pending()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                if not self._readiness.wait_readable(remaining):
                    return
            self._read_once(deadline, at_least(deadline, CONTROL_WRITE))

    def _terminate(self, cause: BaseException | None, eof: bool = False) -> None:
        """End the connection: unblock every thread using the socket.

        The background thread closes the file descriptors once no other
        thread can be inside a call on them.
        """
        with self._lock:
            if self._terminated:
                return
            if cause is not None and self._close_cause is None:
                self._close_cause = cause
            self._terminated = True
            self._writer.ended = True
            self.protocol.receive_eof()
            self._cond.notify_all()
            # Only a background thread waiting in poll() needs the byte (it
            # looks at _terminated, under this lock, before it polls again).
            polling = self._background_waits == _POLLING
        if eof or cause is not None:
            self.logger.debug("= connection ended%s", "" if cause is None else f": {cause!r}")
        try:
            self._raw_socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if polling:
            self._wake()

    def _closed_exception(self) -> ConnectionClosed:
        protocol = self.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        ok = (
            rcvd is not None
            and rcvd.code in _NORMAL_CODES
            and (sent is None or sent.code in _NORMAL_CODES)
        )
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        exc = cls(rcvd, sent, protocol.close_rcvd_then_sent)
        exc.__cause__ = self._close_cause
        return exc

    # -- the background thread ----------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _wake_background_locked(self) -> None:
        waits = self._background_waits
        if waits == _POLLING:
            self._wake()
        elif waits != _RUNNING:
            self._cond.notify_all()

    def _run_background(self) -> None:
        try:
            self._background_loop()
        except BaseException as exc:  # the thread must never die silently
            self.logger.debug("! background thread failed", exc_info=True)
            self._terminate(exc)
        finally:
            self._release_resources()

    def _background_loop(self) -> None:
        cond = self._cond
        holding = False
        try:
            while True:
                with self._lock:
                    self._background_waits = _RUNNING
                    if self._terminated:
                        return
                    now = time.monotonic()
                    action, due = self._timers_locked(now)
                    if action is None:
                        read, wait, forever = self._background_should_read_locked(now)
                        if holding and not read:
                            self._give_up_role_locked()
                            holding = False
                        elif read and not holding:
                            self._take_role_locked(_BACKGROUND)
                            holding = True
                        if not holding:
                            wait = _earliest(wait, due)
                            self._background_waits = _PARKED_FOREVER if forever else _PARKED
                            cond.wait(wait)
                            continue
                        self._background_waits = _POLLING
                if action is not None:
                    action()
                    continue
                if not (self._tls and self._stream.pending()):
                    ready, woken = self._readiness.wait_readable_or_woken(due)
                    if woken:
                        self._drain_wake()
                    if not ready:
                        continue
                now = time.monotonic()
                self._read_once(now, now + CONTROL_WRITE)
        finally:
            if holding:
                with self._lock:
                    self._background_waits = _RUNNING
                    self._give_up_role_locked()

    def _give_up_role_locked(self) -> None:
        """The background thread hands the read role back (callers wait for it)."""
        assert self._reader == _BACKGROUND and self._reader_ident == threading.get_ident()
        self._reader = None
        self._reader_ident = None
        self._cond.notify_all()

    def _background_should_read_locked(self, now: float) -> tuple[bool, float | None, bool]:
        """Whether the background thread should hold the read role now.

        Returns (read, seconds until it should look again, whether a caller
        will wake it when things change).
        """
        reader = self._reader
        if reader == _CALLER or self._role_wanted:
            if self._role_wanted or self._reader_epoch == self._epoch_seen:
                # A caller blocked in one recv(): it notifies when it leaves.
                return False, None, True
            self._epoch_seen = self._reader_epoch
            return False, _RECHECK, False
        queue = self._queue
        closing = queue.terminal is not None or self.protocol.close_sent is not None
        if closing:
            return True, None, False
        if queue.paused:
            # Not even for ping(): a pong missed while paused is excused.
            return False, None, True  # recv() wakes it when the queue drains
        if self._readers_wanted or self._keepalive is not None:
            # Someone waits for an answer (a keepalive ping too: its latency
            # must be the round trip, not the round trip plus _GRACE).
            return True, None, False
        idle = now - self._caller_left_at
        if idle >= _GRACE:
            return True, None, False
        return False, _GRACE - idle, False

    def _timers_locked(self, now: float) -> tuple[Any, float | None]:
        """Keepalive and closing deadlines: the action due now, if any, and
        the seconds until the next one."""
        protocol = self.protocol
        due: float | None = None
        if self._close_sent_at is not None:
            if self.close_timeout is not None:
                at = self._close_sent_at + self.close_timeout
                if now >= at:
                    return self._closing_timed_out, None
                due = at - now
        elif self._queue.terminal is not None:
            if self.close_timeout is not None and self._terminal_at is not None:
                at = self._terminal_at + self.close_timeout
                if now >= at:
                    return self._answer_terminal_late, None
                due = at - now
        elif self.ping_interval is not None:
            pending = self._keepalive
            if pending is not None:
                if self.ping_timeout is not None and not self._queue.paused:
                    at = pending.sent_at + self.ping_timeout
                    if now >= at:
                        return self._keepalive_failed, None
                    due = at - now
            elif self._next_keepalive is not None:
                if now >= self._next_keepalive:
                    return self._send_keepalive, None
                due = self._next_keepalive - now
        if self._writer.owed and protocol.state is not State.CLOSED:
            if now >= self._owed_retry_at:
                self._owed_retry_at = now + _OWED_RETRY
                return self._retry_owed, None
            due = _earliest(due, self._owed_retry_at - now)
        return None, due

    def _closing_timed_out(self) -> None:
        self._terminate(TimeoutError("timed out while closing the connection"))

    def _answer_terminal_late(self) -> None:
        with self._lock:
            self._answer_terminal_locked()
        self._retry_owed()

    def _retry_owed(self) -> None:
        self._flush_owed_quietly(time.monotonic())

    def _send_keepalive(self) -> None:
        with self._lock:
            now = time.monotonic()
            assert self.ping_interval is not None
            self._next_keepalive = now + self.ping_interval
            if self.protocol.close_sent is not None or self._terminated:
                return
            payload = os.urandom(4)
            while self._ping_payload_taken_locked(payload):
                payload = os.urandom(4)
            pending = _PendingPing(payload, now, keepalive=True)
            self._keepalive = pending
            # Joins the ping table when the frame is taken for the wire.
            self._writer.owed.owe_ping(self.protocol.send_ping(payload), payload, pending)
        self._retry_owed()

    def _keepalive_failed(self) -> None:
        self.logger.debug("! keepalive ping timed out")
        with self._lock:
            if self._keepalive is not None:
                self._forget_ping_locked(self._keepalive)
            self._keepalive = None
        error = TimeoutError(f"keepalive ping timeout: no pong within {self.ping_timeout} seconds")
        self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout", error)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(256):
                pass
        except OSError:
            pass

    def _release_resources(self) -> None:
        """Close the file descriptors once no thread can be using them."""
        self._terminate(None)
        with self._lock:
            while self._reader is not None:
                self._cond.wait()
        with self._writer.frame_lock:
            try:
                self._stream.close()
            except OSError:
                pass
            if self._raw_socket is not self.socket:
                try:
                    self._raw_socket.close()
                except OSError:
                    pass
            self._wake_r.close()
            self._wake_w.close()


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _control_payload(data: Any, kind: str) -> bytes:
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{kind} data must be str or bytes-like, not {type(data).__name__}")


def _fragment_bytes(chunk: Any, is_text: bool) -> bytes | bytearray | memoryview:
    if is_text and isinstance(chunk, str):
        return chunk.encode()
    if not is_text and isinstance(chunk, (bytes, bytearray, memoryview)):
        return chunk
    raise TypeError(
        "a fragmented message must be all str or all bytes-like, "
        f"got {type(chunk).__name__} after {'str' if is_text else 'bytes'}"
    )


def _convert(data: str | bytes, decode: bool | None) -> str | bytes:
    """Apply recv()'s ``decode``: True gives str, False gives bytes, None as received."""
    if decode is None:
        return data
    if decode:
        return data if isinstance(data, str) else data.decode()
    return data.encode() if isinstance(data, str) else data


def _preview(payload: bytes | bytearray | memoryview) -> str:
    data = bytes(payload[:60])
    more = "..." if len(payload) > 60 else ""
    return f"{data!r}{more} [{len(payload)} bytes]"


def _describe(event: Fragment | CloseReceived | Failure) -> str:
    if isinstance(event, Fragment):
        kind = "TEXT" if event.is_text else "BINARY"
        if not event.first:
            kind = "CONT"
        data = event.data
        preview = repr(data[:60]) + ("..." if len(data) > 60 else "")
        more = "" if event.fin else ", continued"
        unit = " chars" if event.is_text else " bytes"
        return f"{kind} {preview} [{len(data)}{unit}{more}]"
    if isinstance(event, CloseReceived):
        return f"CLOSE {event.close}"
    return f"FAILURE {event.code} {event.reason}"
