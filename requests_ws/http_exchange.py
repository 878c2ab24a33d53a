"""The upgrade's HTTP/1.1 exchange over a stream our route opened, without
urllib3 and http.client when both sides are plain.

urllib3 and http.client cost more CPU than the rest of an opening together
(connection pools, an email parser for the headers). On our own route the
exchange is one request and, when it succeeds, one ``101`` head, so this
module does that much itself and leaves everything else to them:

* :func:`encode_request` writes the bytes urllib3 would write for the
  :class:`requests.PreparedRequest` (request line, ``Host``,
  ``Accept-Encoding: identity`` unless the request has one, then its headers
  in order), or returns ``None`` when the request is anything but a plain
  ``GET`` without a body whose URL and headers need no encoding decisions.
* :func:`read_head` reads up to the end of the answer's head (the line that
  ends it as http.client sees it), and :func:`parse_switching` accepts it only
  when it is a ``101`` that http.client would read the same way: an
  ``HTTP/1.1`` status line, CRLF line ends, header lines ``name: value``
  with a token name, at most 100 of them, no line longer than http.client
  reads.
* :func:`switching_response` gives that head the shape urllib3 and requests
  give a response (a :class:`urllib3.HTTPResponse` over an
  :class:`http.client.HTTPResponse`, both already taken over as
  :func:`.transport._take_over` leaves them), so hooks, cookies and
  ``Response`` attributes see what they always saw.

Anything else -- another status, an odd head, end of stream, a socket error
or timeout while writing or reading -- is handed to urllib3 unchanged through
a :class:`Replay` of the stream: it writes nothing more (the request went out
already; the write's error, if any, is raised where urllib3 would have met
it) and lets http.client read again the very bytes read here, then the
socket, then meet the very error met here. urllib3, http.client and requests
then decide as they always did (statuses, bodies, auth retries, redirects,
malformed answers, error types and messages).
"""

from __future__ import annotations

import http.client
import inspect
import io
import re
from typing import Any

import urllib3
from urllib3.util import SKIP_HEADER

__all__ = [
    "Replay",
    "TakenStream",
    "encode_request",
    "parse_switching",
    "read_head",
    "switching_response",
]

# http.client's limits on a response head.
_MAX_LINE = 65536
_MAX_HEADERS = 100
# A head longer than this is left to http.client (which reads on).
_MAX_HEAD = 65536
_READ_SIZE = 65536

# What http.client refuses in a request target, and a header name that needs
# no decision (RFC 9110 token).
_DISALLOWED_TARGET = re.compile("[\x00-\x20\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A header name as the email parser behind http.client reads one.
_HEAD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
# A host that needs no IDNA, brackets or zone handling in ``Host``.
_PLAIN_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_SKIPPABLE = frozenset({"accept-encoding", "host", "user-agent"})
_FRAMING = frozenset({"content-length", "transfer-encoding"})

_TAKES_VERSION_STRING = (
    "version_string" in inspect.signature(urllib3.HTTPResponse.__init__).parameters
)


def encode_request(request: Any, host: str, port: int) -> bytes | None:
    """The bytes urllib3's connection to ``host:port`` writes for ``request``
    (a prepared ``GET`` without a body); None when it is not that plain."""
    if request.method != "GET" or request.body is not None:
        return None
    target = request.path_url
    if not target.isascii() or _DISALLOWED_TARGET.search(target):
        return None
    lines = [f"GET {target} HTTP/1.1"]
    names = set()
    items = []
    for name, value in request.headers.items():
        if not (isinstance(name, str) and isinstance(value, str) and _TOKEN.fullmatch(name)):
            return None
        lowered = name.lower()
        names.add(lowered)
        if value == SKIP_HEADER:
            if lowered not in _SKIPPABLE:
                return None
            continue
        if "\r" in value or "\n" in value:
            return None
        items.append(f"{name}: {value}")
    if names & _FRAMING or "user-agent" not in names:
        return None
    if "host" not in names:
        if not _PLAIN_HOST.fullmatch(host):
            return None
        # urllib3's connection leaves the port out at 80, and at 443 (transport's
        # _StreamPool gives it that default port for wss:// there).
        lines.append(f"Host: {host}" if port in (80, 443) else f"Host: {host}:{port}")
    if "accept-encoding" not in names:
        lines.append("Accept-Encoding: identity")
    lines.extend(items)
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        return None


def _head_end(data: bytearray) -> int:
    """Where the head in ``data`` ends (after its empty line), or -1."""
    first = data.find(b"\n")
    if first < 0:
        return -1
    crlf = data.find(b"\n\r\n", first)
    lf = data.find(b"\n\n", first)
    if crlf < 0:
        return -1 if lf < 0 else lf + 2
    if lf < 0 or crlf < lf:
        return crlf + 3
    return lf + 2


class HeadRead:
    """What :func:`read_head` got: the bytes, where the head ends (-1: it
    did not end), and the error that stopped the reading, if any."""

    __slots__ = ("data", "end", "error")

    def __init__(self, data: bytes, end: int, error: Exception | None) -> None:
        self.data = data
        self.end = end
        self.error = error


def read_head(stream: Any) -> HeadRead:
    """Read ``stream`` until the answer's head is complete, the stream ends,
    reading fails or the head grows past what is worth reading here."""
    data = bytearray()
    while True:
        try:
            chunk = stream.recv(_READ_SIZE)
        except Exception as exc:  # met again by http.client through the Replay
            return HeadRead(bytes(data), -1, exc)
        if not chunk:
            return HeadRead(bytes(data), -1, None)
        data += chunk
        end = _head_end(data)
        if end >= 0 or len(data) > _MAX_HEAD:
            return HeadRead(bytes(data), end, None)


def parse_switching(head: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    """The reason and header items of a plain ``101`` head (ending with its
    empty line), as http.client and urllib3 would read them; None otherwise."""
    if head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\n"):
        return None
    lines = head.decode("latin-1").split("\r\n")
    del lines[-2:]  # the empty line and what follows it
    if len(lines) - 1 > _MAX_HEADERS or any(len(line) + 2 > _MAX_LINE for line in lines):
        return None
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1" or parts[1] != "101":
        return None
    reason = parts[2].strip() if len(parts) == 3 else ""
    items = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _HEAD_NAME.fullmatch(name):
            return None
        items.append((name, value.lstrip(" \t")))
    return reason, items


class TakenStream:
    """Stands in for urllib3's connection on a response read here: the stream
    (``sock``) until :func:`.transport._take_over` takes it."""

    __slots__ = ("sock",)

    def __init__(self, sock: Any) -> None:
        self.sock = sock

    def close_stream(self) -> None:
        """Close the stream, unless the WebSocket connection took it over."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        try:
            sock.close()
        except OSError:
            pass

    def close(self) -> None:
        """What urllib3's response calls on its connection when it is closed
        (a hook failed, the 101 was not taken over)."""
        self.close_stream()


class _NoFile:
    """What :class:`http.client.HTTPResponse` reads from: nothing."""

    def makefile(self, mode: str) -> None:
        return None


def switching_response(
    reason: str,
    items: list[tuple[str, str]],
    target: str,
    leftover: bytes,
    connection: TakenStream,
) -> urllib3.HTTPResponse:
    """The :class:`urllib3.HTTPResponse` urllib3 builds for a ``101`` head,
    ready for :func:`.transport._take_over`: ``_connection`` is
    ``connection``, the bytes read past the head (``leftover``) wait in its
    reader."""
    message = http.client.HTTPMessage()
    headers = urllib3.HTTPHeaderDict()
    for name, value in items:
        message[name] = value
        headers.add(name, value)
    original = http.client.HTTPResponse(_NoFile(), method="GET")  # type: ignore[arg-type]
    original.fp = io.BytesIO(leftover)  # type: ignore[assignment]
    original.headers = original.msg = message
    original.version = 11
    original.status = 101
    original.code = 101  # type: ignore[attr-defined]  # http.client sets both
    original.reason = reason
    original.chunked = False
    original.length = 0
    connection_header = message.get("connection")
    original.will_close = bool(connection_header and "close" in connection_header.lower())
    options: dict[str, Any] = {"version_string": "HTTP/1.1"} if _TAKES_VERSION_STRING else {}
    response = urllib3.HTTPResponse(
        body=original,
        headers=headers,
        status=101,
        version=11,
        reason=reason,
        preload_content=False,
        decode_content=False,
        original_response=original,
        request_method="GET",
        request_url=target,
        **options,
    )
    response._connection = connection  # type: ignore[assignment]  # duck-typed: sock, close_stream
    response._pool = None
    return response


class _ReplayReader(io.RawIOBase):
    """The bytes read before, then the error met then (once), then the stream."""

    def __init__(self, data: bytes, error: Exception | None, stream_io: Any) -> None:
        self._data = memoryview(data)
        self._error = error
        self._stream_io = stream_io

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self._data:
            count = min(len(buffer), len(self._data))
            buffer[:count] = self._data[:count]
            self._data = self._data[count:]
            return count
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        result: int | None = self._stream_io.readinto(buffer)
        return result

    def unread(self) -> bytes:
        """What was read before and not replayed yet."""
        data, self._data = bytes(self._data), memoryview(b"")
        return data

    def close(self) -> None:
        try:
            self._stream_io.close()
        finally:
            super().close()


class Replay:
    """``stream`` as urllib3 sees it after this module wrote the request and
    read (part of) the answer: writes are done (the write's error, if any,
    is raised by the first ``sendall``), reads start over with the bytes read
    here. Everything else goes to ``stream``."""

    def __init__(
        self,
        stream: Any,
        read: HeadRead | None,
        write_error: Exception | None,
    ) -> None:
        self.stream = stream
        self._read = read
        self._write_error = write_error
        self._reader: _ReplayReader | None = None

    def sendall(self, data: Any, flags: int = 0) -> None:
        error, self._write_error = self._write_error, None
        if error is not None:
            raise error

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> io.BufferedReader:
        read = self._read
        self._read = None
        stream_io = self.stream.makefile("rb", buffering=0)
        reader = _ReplayReader(
            b"" if read is None else read.data,
            None if read is None else read.error,
            stream_io,
        )
        self._reader = reader
        return io.BufferedReader(reader)

    def unread(self) -> bytes:
        """Bytes read here that http.client has not asked for yet."""
        if self._reader is not None:
            return self._reader.unread()
        read, self._read = self._read, None
        return b"" if read is None else read.data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
