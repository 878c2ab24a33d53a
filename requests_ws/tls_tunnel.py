"""TLS inside an HTTPS proxy's TLS, safe for one reader and many writers.

urllib3's ``SSLTransport`` (wss:// through an ``https://`` proxy) runs an
``ssl.SSLObject`` over memory BIOs and the proxy's TLS socket; it is not
safe for concurrent use: a reader and a writer interleave BIO and socket
calls and break the stream. :class:`TunnelledTLS` takes over the objects of
an established ``SSLTransport`` and owns them under one lock:

* every call on the inner ``SSLObject``, its BIOs and the outer socket is
  made with ``_lock`` held, and none of them blocks (the outer socket is
  non-blocking), so the lock is only ever held briefly;
* ciphertext the inner TLS produced but the outer socket could not take yet
  waits in ``_ciphertext`` and is written, in order, before any later bytes
  (:meth:`flush_pending`).

The interface is that of a non-blocking socket as the connection uses it:
``recv_into`` and ``send`` raise ``BlockingIOError`` (or an ``SSLWant*``
error) when they cannot proceed, and ``pending()`` says whether bytes are
buffered where waiting on the file descriptor cannot see them.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

__all__ = ["TunnelledTLS", "is_tunnelled_tls"]

_RECORD = 16384
_CHUNK = 65536


def is_tunnelled_tls(stream: Any) -> bool:
    """True for urllib3's SSLTransport (TLS over a TLS socket, in memory BIOs)."""
    return all(hasattr(stream, name) for name in ("sslobj", "incoming", "outgoing", "socket"))


class TunnelledTLS:
    """A thread-safe, non-blocking stream over an established SSLTransport."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._sslobj: ssl.SSLObject = transport.sslobj
        self._incoming: ssl.MemoryBIO = transport.incoming
        self._outgoing: ssl.MemoryBIO = transport.outgoing
        self._outer: ssl.SSLSocket = transport.socket
        self._outer.setblocking(False)
        self._lock = threading.Lock()
        self._ciphertext = bytearray()

    # -- what the connection needs -------------------------------------------

    def fileno(self) -> int:
        return self._outer.fileno()

    def pending(self) -> bool:
        with self._lock:
            return bool(self._sslobj.pending() or self._incoming.pending or self._outer.pending())

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        size = nbytes or len(buffer)
        with self._lock:
            while True:
                try:
                    count = int(self._sslobj.read(size, buffer))  # typeshed says bytes
                except ssl.SSLWantReadError:
                    self._collect()
                    # Raises BlockingIOError / SSLWantReadError when the
                    # outer socket has nothing: the caller waits and retries.
                    data = self._outer.recv(_CHUNK)
                    if data:
                        self._incoming.write(data)
                    else:
                        self._incoming.write_eof()
                    continue
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return 0
                self._collect()
                self._flush_locked()
                return count

    def send(self, data: Any) -> int:
        with self._lock:
            if not self._flush_locked():
                raise BlockingIOError("the outer TLS socket cannot take more bytes yet")
            count = self._sslobj.write(memoryview(data)[:_RECORD])
            self._collect()
            self._flush_locked()
            return count

    def flush_pending(self) -> bool:
        """Write buffered ciphertext; True when none is left."""
        with self._lock:
            return self._flush_locked()

    def setblocking(self, flag: bool) -> None:
        if flag:
            raise ValueError("TunnelledTLS is non-blocking only")

    def settimeout(self, value: float | None) -> None:
        if value != 0:
            raise ValueError("TunnelledTLS is non-blocking only")

    def getsockname(self) -> Any:
        return self._outer.getsockname()

    def getpeername(self) -> Any:
        return self._outer.getpeername()

    def shutdown(self, how: int) -> None:
        self._outer.shutdown(how)

    def close(self) -> None:
        self._outer.close()

    # -- with the lock held ------------------------------------------------

    def _collect(self) -> None:
        if self._outgoing.pending:
            self._ciphertext += self._outgoing.read()

    def _flush_locked(self) -> bool:
        pending = self._ciphertext
        while pending:
            try:
                sent = self._outer.send(pending)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return False
            del pending[:sent]
        return True
