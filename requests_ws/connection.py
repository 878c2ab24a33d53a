"""ClientConnection: a socket and a :class:`ClientProtocol`, driven by threads.

This module owns who reads the socket, when, and what happens to the bytes.

* **The read baton.** One lock, ``_baton``, owns "read the socket and parse".
  ``recv()`` first takes messages already queued; when there are none it takes
  the baton and reads in the caller's own thread, so a round trip costs no
  thread hand-off. A background thread reads only while no ``recv()`` is
  active and the caller has been away for ``_BACKGROUND_GRACE`` seconds (or at
  once when ``ping()`` or ``close()`` waits for an answer); it notices a
  caller's leaving by looking every ``_BACKGROUND_POLL`` seconds, never by
  being woken per message. A caller entering ``recv()`` while the background
  thread reads writes a byte to a socketpair, and the baton comes back.
* **Order.** Everything parsed goes into one queue, in order. A close frame
  from the server or a protocol violation is an event in that queue, after the
  messages that preceded it: the client's close frame goes out when the
  application reaches that event, or after ``_TERMINAL_GRACE`` seconds when it
  is not reading, so replies the application sends before its next ``recv()``
  go out before the close frame.
* **Sending** is :class:`~requests_ws.sending.FrameSender`'s: one send lock,
  and a half-written frame is never followed by another.
* **Resources.** The background thread (a daemon) is the last owner: when the
  connection ends it takes the baton and the send lock, then closes the socket
  and the socketpair. ``close()`` waits for it, bounded by ``close_timeout``.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ProtocolError,
)
from .frames import CloseCode, check_close_code
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
from .sending import FrameSender

if TYPE_CHECKING:
    import requests

    from .transport import SocketLike

__all__ = ["ClientConnection"]

# How long the caller of recv() must have been away before the background
# thread starts reading (pings are answered at most this late).
_BACKGROUND_GRACE = 0.02
# While a caller is in recv(), how often the background thread looks whether
# it has left (pings are answered at most about this much later).
_BACKGROUND_POLL = 0.05
# How long a close frame or protocol failure waits in the queue for the
# application to reach it before the client answers it anyway.
_TERMINAL_GRACE = 1.0
_READ_SIZE = 65536
# Reads straight into a large frame's payload buffer ask for at most this.
_DIRECT_READ_SIZE = 262144

_NORMAL_CODES = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)

_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


def _buffered_inside(sock: Any) -> bool:
    """True when a TLS layer holds decrypted or undecrypted bytes that
    ``poll()`` on the file descriptor cannot see."""
    pending = getattr(sock, "pending", None)
    if pending is not None:
        try:
            return bool(pending())
        except (OSError, ValueError):
            return False
    # urllib3's SSLTransport (TLS inside TLS): its SSLObject, its incoming
    # BIO, and the outer TLS socket may each hold bytes.
    sslobj = getattr(sock, "sslobj", None)
    if sslobj is not None:
        try:
            if sslobj.pending() or sock.incoming.pending:
                return True
        except (OSError, ValueError, AttributeError):
            return False
        return _buffered_inside(getattr(sock, "socket", None))
    return False


class ClientConnection(FrameSender):
    """A WebSocket connection to a server, usable from many threads.

    Built by :func:`requests_ws.connect`; do not create it directly except
    through ``create_connection=`` (a subclass is called with the same
    arguments).
    """

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
        self._raw_socket: socket.socket = raw_socket if raw_socket is not None else sock  # type: ignore[assignment]
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
        self._max_queue_high = high
        self._max_queue_low = 0 if low is None else low
        if logger is None:
            logger = logging.getLogger("requests_ws.client")
        elif isinstance(logger, str):
            logger = logging.getLogger(logger)
        self.logger: logging.Logger | logging.LoggerAdapter[Any] = logger
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

        sock.settimeout(None)
        self._fileno = self._raw_socket.fileno()
        # TLS layers may hold bytes that poll() cannot see (_buffered_inside).
        self._tls = sock is not self._raw_socket or isinstance(sock, ssl.SSLSocket)
        self._poller = select.poll()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._poller.register(self._fileno, _POLLIN)
        self._poller.register(self._wake_r.fileno(), select.POLLIN)

        # Reading.
        self._baton = threading.Lock()
        self._queue: collections.deque[Fragment | CloseReceived | Failure] = collections.deque()
        # Complete messages and terminal events in the queue.
        self._complete = 0
        self._recv_guard = threading.Lock()
        self._recv_active = False
        self._caller_left_at = time.monotonic()
        # Threads waiting for something only a reader can bring (pong, close).
        self._eager = 0
        # Threads other than a recv() caller waiting for the baton (close()).
        self._baton_wanted = 0
        self._paused = False
        self._read_buffer = bytearray(_READ_SIZE)
        self._read_view = memoryview(self._read_buffer)

        self._init_sending()

        # Life cycle.
        self._cond = threading.Condition(threading.Lock())
        self._parked = False
        self._terminal_since: float | None = None
        self._terminated = threading.Event()
        self._close_cause: BaseException | None = None
        self._pings: dict[bytes, tuple[float, threading.Event]] = {}
        self._pings_latency: dict[bytes, float] = {}
        self._close_sent_at: float | None = None
        self._keepalive_ping: bytes | None = None
        self._keepalive_sent_at = 0.0
        self._next_keepalive = None if ping_interval is None else time.monotonic() + ping_interval

        if leftover:
            protocol.receive_data(leftover)
            self._dispatch(protocol.events_received())

        self._background = threading.Thread(
            target=self._run_background,
            name=f"requests_ws-{self.id.hex[:8]}",
            daemon=True,
        )
        self._background.start()

    # -- public state --------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection is closed (close frames exchanged or TCP gone)."""
        return self._terminated.is_set()

    @property
    def state(self) -> State:
        """OPEN, CLOSING or CLOSED."""
        if self._terminated.is_set():
            return State.CLOSED
        return self.protocol.state

    @property
    def close_code(self) -> int | None:
        """The close code received, 1006 after an abnormal closure, None while open."""
        if not self._terminated.is_set():
            return None
        rcvd = self.protocol.close_rcvd
        return CloseCode.ABNORMAL_CLOSURE if rcvd is None else rcvd.code

    @property
    def close_reason(self) -> str | None:
        """The close reason received, or None while open."""
        if not self._terminated.is_set():
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
        ``timeout=0`` returns only a message already received. On timeout
        raises :class:`TimeoutError` and loses nothing: a partly received
        message stays queued for the next call.

        Raises :class:`ConnectionClosedOK` / :class:`ConnectionClosedError`
        once the connection is closed and every earlier message has been
        returned, and :class:`ConcurrencyError` when another thread is already
        in ``recv()``.
        """
        if not self._recv_guard.acquire(blocking=False):
            raise ConcurrencyError(
                "cannot call recv while another thread is already running recv or recv_streaming"
            )
        try:
            self._enter_reading()
            try:
                deadline = None if timeout is None else time.monotonic() + timeout
                parts = self._take_message(deadline)
            finally:
                self._leave_reading()
        finally:
            self._recv_guard.release()
        return self._assemble(parts, decode)

    def recv_streaming(self, decode: bool | None = None) -> Iterator[str | bytes]:
        """Yield the fragments of the next message as they arrive.

        Holds the right to receive until the message ends: another thread's
        ``recv()`` meanwhile raises :class:`ConcurrencyError`.
        """
        if not self._recv_guard.acquire(blocking=False):
            raise ConcurrencyError(
                "cannot call recv_streaming while another thread is already running "
                "recv or recv_streaming"
            )
        try:
            while True:
                self._enter_reading()
                try:
                    fragment = self._take_fragment()
                finally:
                    self._leave_reading()
                yield _convert(fragment.data, decode)
                if fragment.fin:
                    return
        finally:
            self._recv_guard.release()

    def _enter_reading(self) -> None:
        self._recv_active = True

    def _leave_reading(self) -> None:
        # No notify here: waking the background thread on every message is
        # the cost this design avoids. It looks again within _BACKGROUND_POLL.
        self._caller_left_at = time.monotonic()
        self._recv_active = False

    def _take_message(self, deadline: float | None) -> list[Fragment]:
        """Wait for a complete message at the head of the queue and take it."""
        queue = self._queue
        while True:
            if self._complete:
                head = queue[0]
                if isinstance(head, Fragment):
                    parts: list[Fragment] = []
                    while True:
                        fragment = queue.popleft()
                        assert isinstance(fragment, Fragment)
                        parts.append(fragment)
                        if fragment.fin:
                            break
                    with self._cond:
                        self._complete -= 1
                        self._maybe_resume()
                    return parts
                self._reach_terminal(head)
            elif self._terminated.is_set():
                raise self._closed_exception()
            self._read_until_message(deadline)

    def _take_fragment(self) -> Fragment:
        """Wait for the next fragment of a message and take it."""
        queue = self._queue
        while True:
            if queue:
                head = queue[0]
                if isinstance(head, Fragment):
                    queue.popleft()
                    if head.fin:
                        with self._cond:
                            self._complete -= 1
                            self._maybe_resume()
                    return head
                if self._complete:
                    self._reach_terminal(head)
            if self._terminated.is_set():
                raise self._closed_exception()
            self._read_until_message(None, any_fragment=True)

    @staticmethod
    def _assemble(parts: list[Fragment], decode: bool | None) -> str | bytes:
        if len(parts) == 1:
            return _convert(parts[0].data, decode)
        pieces = [part.data for part in parts]
        if parts[0].is_text:
            data: str | bytes = "".join(piece for piece in pieces if isinstance(piece, str))
        else:
            data = b"".join(piece for piece in pieces if isinstance(piece, bytes))
        return _convert(data, decode)

    def _read_until_message(self, deadline: float | None, any_fragment: bool = False) -> None:
        """Read in the caller's thread until a complete message (or, with
        ``any_fragment``, any fragment) is queued, or ``deadline`` passes."""
        baton = self._baton
        if not baton.acquire(blocking=False):
            # The background thread is reading: ask for the baton back.
            self._wake()
            if deadline is None:
                baton.acquire()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not baton.acquire(timeout=remaining):
                    raise TimeoutError("timed out while waiting for a message")
        try:
            polled = False
            while not (self._complete or (any_fragment and self._queue)):
                if self._terminated.is_set():
                    return
                wait: float | None = None
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        if polled:
                            raise TimeoutError("timed out while waiting for a message")
                        wait = 0
                self._read_once(wait)
                polled = True
        finally:
            baton.release()

    def _read_until_terminated(self, timeout: float | None) -> None:
        """Read in the caller's thread until the connection ends, at most
        ``timeout`` seconds; then end it anyway."""
        deadline = None if timeout is None else time.monotonic() + timeout
        baton = self._baton
        if not baton.acquire(blocking=False):
            self._baton_wanted += 1
            try:
                self._wake()
                acquired = baton.acquire(timeout=-1 if timeout is None else timeout)
            finally:
                self._baton_wanted -= 1
            if not acquired:
                self._wait_terminated(0)
                return
        try:
            while not self._terminated.is_set():
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    self._wait_terminated(0)
                    return
                self._read_once(wait)
        finally:
            baton.release()

    def _read_once(self, wait: float | None) -> bool:
        """Wait up to ``wait`` seconds for data, read it and dispatch its events.

        Call with the baton held. Returns False when nothing was read.
        """
        sock = self.socket
        if not (self._tls and _buffered_inside(sock)):
            ready = self._poller.poll(None if wait is None else wait * 1000)
            if not ready:
                return False
            socket_ready = False
            for fd, _ in ready:
                if fd == self._fileno:
                    socket_ready = True
                else:
                    self._drain_wake()
            if not socket_ready:
                return False
        protocol = self.protocol
        direct = protocol.direct_buffer()
        try:
            if direct is not None:
                size = sock.recv_into(direct, min(len(direct), _DIRECT_READ_SIZE))
            else:
                size = sock.recv_into(self._read_view)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return False
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except OSError as exc:
            self._on_eof(exc)
            return True
        if size == 0:
            self._on_eof(None)
            return True
        if direct is not None:
            direct.release()
            protocol.direct_received(size)
        else:
            protocol.receive_data(self._read_view[:size])
        events = protocol.events_received()
        if events:
            self._dispatch(events)
        return True

    def _dispatch(self, events: list[Any]) -> None:
        """Act on parsed events: queue data and terminal events, answer pings."""
        queue = self._queue
        debug = self.logger.isEnabledFor(logging.DEBUG)
        completed = 0
        for event in events:
            kind = type(event)
            if kind is Fragment:
                queue.append(event)
                if event.fin:
                    completed += 1
                if debug:
                    self.logger.debug("< %s", _describe(event))
            elif kind is Ping:
                if debug:
                    self.logger.debug("< PING %r", event.data)
                try:
                    self._send_control(self.protocol.send_pong(event.data), "PONG", event.data)
                except InvalidState:
                    pass
            elif kind is Pong:
                if debug:
                    self.logger.debug("< PONG %r", event.data)
                self._acknowledge_pings(event.data)
            else:
                if debug:
                    self.logger.debug("< %s", _describe(event))
                # A message cut short by a close frame or a failure is dropped.
                try:
                    while type(queue[-1]) is Fragment and not queue[-1].fin:
                        queue.pop()
                except IndexError:
                    pass
                queue.append(event)
                completed += 1
                with self._cond:
                    self._terminal_since = time.monotonic()
        with self._cond:
            self._complete += completed
            if self._terminal_since is not None and self._parked:
                self._cond.notify()
        if self._max_queue_high is not None and len(queue) >= self._max_queue_high:
            self._paused = True

    def _reach_terminal(self, event: CloseReceived | Failure) -> None:
        """The application reached a close frame or failure in the queue:
        answer it, wait for the end of the connection, then raise."""
        self._answer_terminal(event)
        self._read_until_terminated(self.close_timeout)
        raise self._closed_exception()

    def _answer_terminal(self, event: CloseReceived | Failure) -> None:
        """Send the close frame that answers ``event``, once."""
        protocol = self.protocol
        if protocol.close_sent is not None:
            return
        if isinstance(event, Failure):
            frame = protocol.fail(event.code, event.reason)
            if self._close_cause is None:
                self._close_cause = event.error
            self.logger.debug("! failing connection with code %d: %s", event.code, event.reason)
        else:
            rcvd = event.close
            code = CloseCode.NORMAL_CLOSURE if rcvd.code == CloseCode.NO_STATUS_RCVD else rcvd.code
            try:
                frame = protocol.send_close(code, "")
            except InvalidState:
                return
        self._send_close_frame(frame)

    def _on_eof(self, error: BaseException | None) -> None:
        """The stream ended (or failed): the connection is over."""
        self.protocol.receive_eof()
        if error is not None and self._close_cause is None:
            self._close_cause = error
        self._terminate()

    def _closed_exception(self) -> ConnectionClosed:
        protocol = self.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        ok = (
            rcvd is not None
            and sent is not None
            and rcvd.code in _NORMAL_CODES
            and sent.code in _NORMAL_CODES
        ) or (rcvd is not None and sent is None and rcvd.code in _NORMAL_CODES)
        cls = ConnectionClosedOK if ok else ConnectionClosedError
        exc = cls(rcvd, sent, protocol.close_rcvd_then_sent)
        exc.__cause__ = self._close_cause
        return exc

    def ping(self, data: str | bytes = b"", timeout: float | None = None) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        Raises :class:`TimeoutError` when no pong arrives within ``timeout``,
        :class:`ConcurrencyError` when a ping with the same payload is pending,
        and :class:`ConnectionClosed` when the connection closes meanwhile.
        """
        payload = data.encode() if isinstance(data, str) else bytes(data)
        if self._terminated.is_set() or self.protocol.close_sent is not None:
            raise self._closed_exception()
        waiter = threading.Event()
        with self._cond:
            if payload in self._pings:
                raise ConcurrencyError(
                    "a ping with the same payload is already waiting for its pong"
                )
            if not payload:
                payload = os.urandom(4)
                while payload in self._pings:
                    payload = os.urandom(4)
            sent_at = time.monotonic()
            self._pings[payload] = (sent_at, waiter)
        try:
            frame = self.protocol.send_ping(payload)
            self._acquire_send_lock(None if timeout is None else sent_at + timeout)
            try:
                if self.protocol.close_sent is not None:
                    raise self._closed_exception()
                self._write(frame, None if timeout is None else sent_at + timeout)
            finally:
                self._release_send_lock()
            self._want_reader(+1)
            try:
                if not self._wait_event_or_closed(waiter, timeout):
                    raise TimeoutError("no pong received in time")
            finally:
                self._want_reader(-1)
            if not waiter.is_set():
                raise self._closed_exception()
            return self._pings_latency.pop(payload, time.monotonic() - sent_at)
        finally:
            with self._cond:
                self._pings.pop(payload, None)

    def _wait_event_or_closed(self, event: threading.Event, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not event.is_set():
            if self._terminated.is_set():
                return True
            step = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if step <= 0:
                return False
            event.wait(step)
        return True

    def _acknowledge_pings(self, data: bytes) -> None:
        now = time.monotonic()
        with self._cond:
            if data not in self._pings:
                return
            latencies = self._pings_latency
            # A pong acknowledges its ping and every ping sent before it.
            for payload, (sent_at, waiter) in list(self._pings.items()):
                if payload == self._keepalive_ping:
                    self.latency = now - sent_at
                    self._keepalive_ping = None
                else:
                    # ping() takes its round-trip time from here.
                    latencies[payload] = now - sent_at
                waiter.set()
                del self._pings[payload]
                if payload == data:
                    break

    # -- closing -------------------------------------------------------------

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Perform the closing handshake and release the socket.

        Waits up to ``close_timeout`` for the server's close frame and for TCP
        to close, then drops the connection anyway. Idempotent and safe from
        any thread; a thread blocked in ``recv()`` is woken and gets
        :class:`ConnectionClosed`. Invalid codes (1005, 1006, 1015, below 1000,
        above 4999) raise :class:`ProtocolError` and leave the connection open.
        """
        check_close_code(code)
        if len(reason.encode()) > 123:
            raise ProtocolError("close reason too long: at most 123 bytes of UTF-8")
        timeout = self.close_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._terminated.is_set():
            if self.protocol.close_sent is None:
                try:
                    frame = self.protocol.send_close(code, reason)
                except InvalidState:
                    frame = b""
                self._send_close_frame(frame, deadline)
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            if self._recv_active:
                # The thread in recv() reads the answer; it raises ConnectionClosed.
                self._want_reader(+1)
                try:
                    self._wait_terminated(remaining)
                finally:
                    self._want_reader(-1)
            else:
                self._read_until_terminated(remaining)
        if self._background is not threading.current_thread():
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            self._background.join(remaining)

    def _wait_terminated(self, timeout: float | None) -> None:
        if not self._terminated.wait(timeout):
            if self._close_cause is None:
                self._close_cause = TimeoutError("timed out while closing the connection")
            self._terminate()

    def _fail_locally(self, code: int, reason: str, cause: BaseException | None = None) -> None:
        """Fail the connection from the client side; call with the send lock held."""
        if cause is not None and self._close_cause is None:
            self._close_cause = cause
        if code != CloseCode.ABNORMAL_CLOSURE and self.protocol.close_sent is None:
            self._close_sent_at = time.monotonic()
            try:
                self._write(self.protocol.fail(code, reason), None)
            except (ConnectionClosed, TimeoutError, OSError):
                pass
        self._terminate()

    def _terminate(self) -> None:
        """End the connection: unblock every thread using the socket.

        The background thread closes the file descriptors once no other
        thread can be inside a call on them.
        """
        if self._terminated.is_set():
            return
        self._terminated.set()
        try:
            self._raw_socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._cond:
            self._cond.notify_all()
        self._wake()
        with self._cond:
            for _sent_at, waiter in self._pings.values():
                waiter.set()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(256):
                pass
        except OSError:
            pass

    def _want_reader(self, delta: int) -> None:
        with self._cond:
            self._eager += delta
            if self._parked:
                self._cond.notify()

    def _maybe_resume(self) -> None:
        """Resume background reading once the queue drained below ``low``.

        Call with ``_cond`` held.
        """
        if self._paused and len(self._queue) <= self._max_queue_low:
            self._paused = False
            if self._keepalive_ping is not None:
                # The missing pong was not the server's fault while paused.
                self._keepalive_sent_at = time.monotonic()
            if self._parked:
                self._cond.notify()

    # -- the background thread ----------------------------------------------

    def _run_background(self) -> None:
        try:
            while not self._terminated.is_set():
                if self._wait_for_turn():
                    self._read_in_background()
        except BaseException as exc:  # the thread must never die silently
            if self._close_cause is None:
                self._close_cause = exc
            self.logger.debug("! background thread failed", exc_info=True)
            self._terminate()
        finally:
            self._release_resources()

    def _wait_for_turn(self) -> bool:
        """Run timers and wait until the background thread should read."""
        with self._cond:
            while not self._terminated.is_set():
                now = time.monotonic()
                wait = self._run_timers(now)
                if not self._paused and not self._recv_active:
                    if self._eager or self._terminal_since is not None:
                        return True
                    idle = now - self._caller_left_at
                    if idle >= _BACKGROUND_GRACE:
                        return True
                    wait = min(wait, _BACKGROUND_GRACE - idle)
                elif self._recv_active:
                    wait = min(wait, _BACKGROUND_POLL)
                self._parked = True
                try:
                    self._cond.wait(wait)
                finally:
                    self._parked = False
        return False

    def _run_timers(self, now: float) -> float:
        """Keepalive and deferred answers; return seconds until the next timer.

        Called with ``_cond`` held; sends nothing that could block for long.
        """
        wait = 1.0
        if self._close_sent_at is not None:
            # Closing: the reading loop enforces close_timeout.
            return wait
        # A close frame or failure the application has not reached in time.
        if self._terminal_since is not None and self.protocol.close_sent is None:
            due = self._terminal_since + _TERMINAL_GRACE
            if now >= due or self._eager:
                head = self._queue[-1]
                assert not isinstance(head, Fragment)  # the terminal event comes last
                self._cond.release()
                try:
                    self._answer_terminal(head)
                finally:
                    self._cond.acquire()
            else:
                wait = min(wait, due - now)
        if self.ping_interval is not None and self.protocol.close_sent is None:
            if self._keepalive_ping is not None:
                if self.ping_timeout is not None and not self._paused:
                    due = self._keepalive_sent_at + self.ping_timeout
                    if now >= due:
                        self._cond.release()
                        try:
                            self._keepalive_failed()
                        finally:
                            self._cond.acquire()
                        return 0.0
                    wait = min(wait, due - now)
            elif self._next_keepalive is not None:
                if now >= self._next_keepalive:
                    self._cond.release()
                    try:
                        self._send_keepalive(now)
                    finally:
                        self._cond.acquire()
                    self._next_keepalive = now + self.ping_interval
                wait = min(wait, max(self._next_keepalive - now, 0.0))
        return max(wait, 0.0)

    def _send_keepalive(self, now: float) -> None:
        payload = os.urandom(4)
        with self._cond:
            self._pings[payload] = (now, threading.Event())
            self._keepalive_ping = payload
            self._keepalive_sent_at = now
        try:
            self._send_control(self.protocol.send_ping(payload), "PING", payload)
        except InvalidState:
            pass

    def _keepalive_failed(self) -> None:
        self.logger.debug("! keepalive ping timed out")
        error = TimeoutError(f"keepalive ping timeout: no pong within {self.ping_timeout} seconds")
        if self._close_cause is None:
            self._close_cause = error
        self._keepalive_ping = None
        if self.protocol.close_sent is None:
            self._send_close_frame(
                self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout"),
                None if self.close_timeout is None else time.monotonic() + self.close_timeout,
            )

    def _read_in_background(self) -> None:
        baton = self._baton
        if not baton.acquire(timeout=0.1):
            return
        try:
            while not self._terminated.is_set():
                if self._recv_active or self._baton_wanted or self._paused:
                    return
                if (
                    self._close_sent_at is not None
                    and self.close_timeout is not None
                    and self._close_sent_at + self.close_timeout < time.monotonic()
                ):
                    if self._close_cause is None:
                        self._close_cause = TimeoutError("timed out while closing the connection")
                    self._terminate()
                    return
                # After an idle wait, give the timers a turn.
                if not self._read_once(0.1) and not self._eager and self._timers_due():
                    return
        finally:
            baton.release()

    def _timers_due(self) -> bool:
        now = time.monotonic()
        if self._terminal_since is not None and self.protocol.close_sent is None:
            return True
        if self.ping_interval is None:
            return False
        if self._keepalive_ping is not None:
            return self.ping_timeout is not None and (
                now >= self._keepalive_sent_at + self.ping_timeout
            )
        return self._next_keepalive is not None and now >= self._next_keepalive

    def _release_resources(self) -> None:
        """Close the socket and the socketpair once no thread can use them."""
        self._terminate()
        with self._baton:
            acquired = self._send_lock.acquire(timeout=self.close_timeout or 10)
            try:
                try:
                    self.socket.close()
                except OSError:
                    pass
                if self._raw_socket is not self.socket:
                    try:
                        self._raw_socket.close()
                    except OSError:
                        pass
                try:
                    self._poller.unregister(self._wake_r.fileno())
                except (KeyError, ValueError, OSError):
                    pass
                self._wake_r.close()
                self._wake_w.close()
            finally:
                if acquired:
                    self._send_lock.release()


def _convert(data: str | bytes, decode: bool | None) -> str | bytes:
    """Apply recv()'s ``decode``: True gives str, False gives bytes, None as received."""
    if decode is None:
        return data
    if decode:
        return data if isinstance(data, str) else data.decode()
    return data.encode() if isinstance(data, str) else data


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
