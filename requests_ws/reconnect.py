"""reconnect(): an endless supply of connections for long-running consumers.

This module owns the retry rule: which failures can heal by waiting and
connecting again, and how long to wait (exponential backoff with full jitter,
capped at ``max_delay``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from .client import connect
from .connection import ClientConnection
from .exceptions import (
    ConnectionClosedError,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    OpenTimeout,
    ProxyError,
)

__all__ = ["reconnect", "is_retryable"]

logger = logging.getLogger("requests_ws.reconnect")


def is_retryable(error: BaseException) -> bool:
    """Can waiting and connecting again heal ``error``?

    Yes for refused or reset connections, timeouts, proxy failures and 5xx
    handshake answers; no for bad URIs, 4xx answers, TLS verification
    failures, negotiation failures and other handshake errors (the server
    would answer the same way again).
    """
    if isinstance(error, InvalidURI):
        return False
    if isinstance(error, InvalidStatus):
        return error.response.status_code >= 500
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


def reconnect(
    uri: str,
    *,
    session: requests.Session | None = None,
    min_delay: float = 0.5,
    max_delay: float = 60.0,
    factor: float = 2.0,
    max_attempts: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **connect_kwargs: Any,
) -> Iterator[ClientConnection]:
    """Yield a fresh connection to ``uri`` after each (re)connection.

    ::

        for ws in requests_ws.reconnect("wss://example.com/feed"):
            try:
                for message in ws:
                    handle(message)
            except requests_ws.ConnectionClosedError:
                continue        # reconnect, after a backoff delay

    When connecting fails with an error that can heal (:func:`is_retryable`)
    it waits and tries again; the n-th consecutive wait is drawn uniformly
    from ``[0, min(max_delay, min_delay * factor ** n)]`` (full jitter).
    ``max_attempts`` bounds consecutive failed attempts (``None``: no bound);
    the last error is then raised. Errors that cannot heal are raised at once.

    When the loop body ends, the connection is closed. If it had ended with
    an error (such as :class:`ConnectionClosedError`) the next connection
    waits like a failed attempt; after a normal closure it reconnects at once.
    Leaving the loop (``break``, ``return``, an exception) ends it all.
    Keyword arguments go to :func:`requests_ws.connect`.
    """
    if min_delay < 0 or max_delay < 0 or factor < 1:
        raise ValueError("need min_delay >= 0, max_delay >= 0 and factor >= 1")
    failures = 0
    while True:
        if failures:
            bound = min(max_delay, min_delay * factor ** (failures - 1))
            delay = random.uniform(0, bound)
            logger.info("reconnecting to %s in %.2f s (attempt %d)", uri, delay, failures + 1)
            sleep(delay)
        try:
            connection = connect(uri, session=session, **connect_kwargs)
        except Exception as exc:
            failures += 1
            if not is_retryable(exc) or (max_attempts is not None and failures >= max_attempts):
                raise
            logger.info("connecting to %s failed: %s", uri, exc)
            continue
        try:
            yield connection
        finally:
            connection.close()
        code = connection.close_code
        failures = 0 if code in (1000, 1001) else 1
