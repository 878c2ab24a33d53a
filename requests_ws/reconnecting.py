"""reconnect() / unix_reconnect(): connections that come back, as in
websockets 17's ``websockets.sync.client.reconnect``.

This module owns the retry rule (:func:`process_exception`: which failures
can heal by waiting and connecting again) and the waits between attempts
(:func:`backoff`: exponential with full jitter, capped). A :class:`reconnect`
is used as an iterator (a fresh connection after each (re)connection) or as a
context manager (one connection, opened with retries). Log lines show URIs
with their password masked, and error messages that are already redacted.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Generator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

import requests

from .arguments import check_keywords
from .client import CONNECT_OPTIONS, ConnectOptions, _open, parse_uri, unix_options
from .connection import ClientConnection
from .exceptions import (
    ConnectionClosedError,
    InvalidHandshake,
    InvalidMessage,
    InvalidProxy,
    InvalidStatus,
    InvalidURI,
    OpenTimeout,
    ProxyError,
)
from .redaction import redact_url

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["reconnect", "unix_reconnect", "process_exception", "is_retryable", "backoff"]

logger = logging.getLogger("requests_ws.reconnect")


def is_retryable(error: BaseException) -> bool:
    """Can waiting and connecting again heal ``error``?

    Yes for refused or reset connections, timeouts, proxy failures, answers
    cut short and 5xx handshake answers; no for bad URIs or proxy URLs, 4xx
    answers, TLS verification failures, negotiation failures and other
    handshake errors (the server would answer the same way again).
    """
    if isinstance(error, (InvalidURI, InvalidProxy)):
        return False
    if isinstance(error, InvalidStatus):
        return error.response.status_code >= 500
    if isinstance(error, InvalidMessage):
        return isinstance(error.__cause__, (EOFError, ConnectionError)) or (
            type(error.__cause__).__name__ in ("RemoteDisconnected", "IncompleteRead")
        )
    if isinstance(error, (ProxyError, OpenTimeout)):
        return True
    if isinstance(error, InvalidHandshake):
        return False
    if isinstance(error, requests.exceptions.SSLError):
        return False
    if isinstance(
        error,
        (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionClosedError),
    ):
        return True
    return isinstance(error, OSError)


def process_exception(exc: Exception) -> Exception | None:
    """The default retry rule, with websockets' API: ``None`` when ``exc`` is
    worth retrying (:func:`is_retryable`), else the exception to raise."""
    return None if is_retryable(exc) else exc


def backoff(
    min_delay: float = 0.5, max_delay: float = 60.0, factor: float = 2.0
) -> Generator[float, None, None]:
    """Waits before each new attempt: the n-th drawn uniformly from
    ``[0, min(max_delay, min_delay * factor ** n)]`` (full jitter)."""
    attempt = 0
    while True:
        yield random.uniform(0, min(max_delay, min_delay * factor**attempt))
        attempt += 1


class reconnect:
    """Connections to ``uri`` that come back after failures.

    As an iterator, it yields a fresh connection after each (re)connection::

        for ws in requests_ws.reconnect("wss://example.com/feed"):
            try:
                for message in ws:
                    handle(message)
            except requests_ws.ConnectionClosedError:
                continue        # reconnect, after a backoff delay

    As a context manager, ``with reconnect(uri) as ws:`` opens one connection
    (retrying as below) and closes it on exit.

    When connecting fails, ``process_exception(exc)`` decides: ``None``
    retries after the next of ``reconnect_delays()`` (default: :func:`backoff`
    with ``min_delay``, ``max_delay`` and ``factor``), an exception is raised
    (``exc`` itself, or a new one chained to it). ``max_attempts`` bounds
    consecutive failed attempts (``None``: no bound); the last error is then
    raised. When the loop body ends the connection is closed; if it had ended
    with an error (such as :class:`ConnectionClosedError`) the next attempt
    waits like a failed one, after a normal closure it reconnects at once.
    Leaving the loop (``break``, ``return``, an exception) ends it all.
    Other keyword arguments are those of :func:`requests_ws.connect`.
    """

    def __init__(
        self,
        uri: str,
        *,
        process_exception: Callable[[Exception], Exception | None] = process_exception,
        reconnect_delays: Callable[[], Iterator[float]] | None = None,
        min_delay: float = 0.5,
        max_delay: float = 60.0,
        factor: float = 2.0,
        max_attempts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **options: Unpack[ConnectOptions],
    ) -> None:
        check_keywords("reconnect", options, CONNECT_OPTIONS)
        if min_delay < 0 or max_delay < 0 or factor < 1:
            raise ValueError("need min_delay >= 0, max_delay >= 0 and factor >= 1")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 or None")
        if not callable(process_exception):
            raise TypeError("process_exception must be a callable")
        parse_uri(uri)
        self.uri = uri
        self.process_exception = process_exception
        if reconnect_delays is None:

            def reconnect_delays() -> Iterator[float]:
                return backoff(min_delay, max_delay, factor)

        self.reconnect_delays = reconnect_delays
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._unix_path: str | None = None  # set by unix_reconnect
        self.options = options
        self._iterator: Iterator[ClientConnection] | None = None
        self._connection: ClientConnection | None = None

    def _connect_with_retries(self, delays: Iterator[float] | None) -> ClientConnection:
        failures = 0
        while True:
            try:
                return _open(self.uri, self.options, self._unix_path)
            except Exception as exc:
                try:
                    decided = self.process_exception(exc)
                except Exception as raised:
                    decided = raised
                if decided is exc:
                    raise
                if decided is not None:
                    raise decided from exc
                failures += 1
                if self.max_attempts is not None and failures >= self.max_attempts:
                    raise
                if delays is None:
                    delays = self.reconnect_delays()
                delay = next(delays)
                logger.info(
                    "connecting to %s failed; reconnecting in %.2f s (attempt %d): %s",
                    redact_url(self.uri),
                    delay,
                    failures + 1,
                    exc,
                )
                self.sleep(delay)

    def _generate(self) -> Iterator[ClientConnection]:
        delays: Iterator[float] | None = None
        while True:
            if delays is not None:
                delay = next(delays)
                logger.info("reconnecting to %s in %.2f s", redact_url(self.uri), delay)
                self.sleep(delay)
            connection = self._connect_with_retries(delays)
            try:
                yield connection
            finally:
                connection.close()
            if connection.close_code in (1000, 1001):
                delays = None
            else:
                delays = self.reconnect_delays()

    def __iter__(self) -> Iterator[ClientConnection]:
        return self

    def __next__(self) -> ClientConnection:
        if self._iterator is None:
            self._iterator = self._generate()
        return next(self._iterator)

    def close(self) -> None:
        """End the loop: close the current connection, if any."""
        if self._iterator is not None:
            iterator, self._iterator = self._iterator, None
            iterator.close()  # type: ignore[attr-defined]

    def __enter__(self) -> ClientConnection:
        if self._connection is not None:
            raise RuntimeError("reconnect() is already in a with block")
        self._connection = self._connect_with_retries(None)
        return self._connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def unix_reconnect(
    path: str | os.PathLike[str] | None = None,
    uri: str | None = None,
    *,
    process_exception: Callable[[Exception], Exception | None] = process_exception,
    reconnect_delays: Callable[[], Iterator[float]] | None = None,
    min_delay: float = 0.5,
    max_delay: float = 60.0,
    factor: float = 2.0,
    max_attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **options: Unpack[ConnectOptions],
) -> reconnect:
    """:func:`unix_connect` with the automatic reconnection of :class:`reconnect`."""
    check_keywords("unix_reconnect", options, CONNECT_OPTIONS)
    uri, unix_path, checked = unix_options(path, uri, options)
    reconnecting = reconnect(
        uri,
        process_exception=process_exception,
        reconnect_delays=reconnect_delays,
        min_delay=min_delay,
        max_delay=max_delay,
        factor=factor,
        max_attempts=max_attempts,
        sleep=sleep,
        **checked,
    )
    reconnecting._unix_path = unix_path
    return reconnecting
