"""The command-line client: ``requests-ws URL`` or ``python -m requests_ws URL``.

This module owns the terminal: parsing and checking the arguments, choosing a
mode from them and from what stdin and stdout are, printing messages, the
``--verbose`` view (with credentials masked), and the exit status. It opens
the connection through the requests door (:meth:`requests_ws.Session.ws_connect`),
so the environment's proxies, CA bundle and netrc apply as they do to requests.

Modes:

* interactive (stdin is a terminal): a ``>`` prompt with line editing and
  history where :mod:`readline` exists; messages that arrive are printed above
  the line being typed. Ctrl-D on an empty line closes, Ctrl-C too.
* piped (stdin is a pipe or a file): every line is sent, then replies are
  printed until the server closes, ``-n`` messages came, or ``-w`` seconds
  passed after the end of the input.
* listen (``--listen``, or ``-n`` without ``-x``): nothing is read from stdin.
* script (``-x MESSAGE``...): send, print the replies, exit.

Whatever the mode, the client exits when the server closes, printing the code
and reason on stderr. The exit statuses are in ``EPILOG``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib.metadata
import itertools
import logging
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TextIO

import requests
import requests.auth

from . import masking
from .client import Session
from .connection import ClientConnection
from .exceptions import ConnectionClosed, WebSocketException
from .frames import Close
from .version import __version__

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EPILOG = """\
modes:
  interactive  stdin is a terminal: a '> ' prompt with line editing and history
               (readline); Ctrl-D on an empty line or Ctrl-C closes
  piped        stdin is a pipe or file: send every line, then print replies until
               the server closes, -n messages came or -w seconds passed
  listen       --listen, or -n without -x: read nothing, print what arrives
  script       -x MESSAGE (repeatable): send, print the replies, exit
  In every mode the client exits when the server closes, printing the close
  code and reason. Received messages go to stdout (one per line; on a terminal
  prefixed with '< ' and with control characters escaped); everything else goes
  to stderr.

exit status:
  0    the session ended normally (server closed with 1000 or 1001, Ctrl-D,
       all -n/-x replies came, or -w expired without -n)
  1    the server closed with another code or the connection dropped, or the
       -n/-x replies did not all come within -w seconds
  2    bad argument, or the connection could not be opened (refused, TLS,
       proxy, non-101 answer, open timeout)
  130  interrupted by Ctrl-C (also while connecting)

environment:
  HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY
                     proxies, as requests uses them (HTTP_PROXY for ws://,
                     HTTPS_PROXY for wss://); --proxy and --no-proxy override
  REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE
                     CA bundle to verify servers; --cacert and -k win over them
  NETRC              netrc file with credentials (default ~/.netrc), used when
                     neither -u nor credentials in the URL are given
  NO_COLOR           do not color received messages on a terminal
  REQUESTS_WS_NO_SPEEDUPS=1
                     use the pure-Python masking instead of the C accelerator

examples:
  requests-ws ws://localhost:8765/                     talk interactively
  requests-ws ws://localhost:8765/ -x hello -x world   send two, print two replies
  seq 1 20 | requests-ws -w 2 ws://localhost:8765/     send 20 lines, print replies
  requests-ws --listen -n 10 wss://stream.example/feed print 10 messages, exit
  requests-ws -u alice:s3cret --digest -v wss://svc.example/ws
  requests-ws --proxy http://proxy.corp:3128 --cacert corp-ca.pem wss://svc/
"""

# Escape ASCII control characters (and DEL, C1) before printing to a terminal,
# so that a message cannot move the cursor or change the terminal's state.
_TERMINAL_ESCAPES = str.maketrans(
    {i: repr(chr(i))[1:-1] for i in itertools.chain(range(32), range(127, 160))}
)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
_NORMAL_CLOSE_CODES = (1000, 1001)


class _Parser(argparse.ArgumentParser):
    """argparse with ``error: ...`` on stderr and status 2 for every bad argument."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more seconds")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _version_text() -> str:
    masking_kind = "C accelerator" if masking.ACCELERATED else "pure Python"
    return (
        f"requests-ws {__version__} (requests {importlib.metadata.version('requests')}, "
        f"urllib3 {importlib.metadata.version('urllib3')}, Python {sys.version.split()[0]}, "
        f"masking: {masking_kind})"
    )


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="requests-ws",
        description="Talk WebSocket from the terminal. The handshake goes through "
        "requests: the environment's proxies, CA bundle and netrc apply.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="ws:// or wss:// URL (user:password@ in it is sent as Basic)")
    parser.add_argument("--version", action="version", version=_version_text())
    talk = parser.add_argument_group("what to send and when to stop")
    talk.add_argument(
        "-x",
        "--execute",
        action="append",
        default=[],
        metavar="MESSAGE",
        help="send MESSAGE (repeatable), print the replies, exit",
    )
    talk.add_argument(
        "-n",
        "--count",
        type=_count,
        metavar="N",
        help="exit after N messages were received (with -x: replies to wait for, "
        "default one per message; without -x: listen mode)",
    )
    talk.add_argument(
        "-w",
        "--wait",
        type=_non_negative,
        metavar="SECONDS",
        help="how long to wait for messages: with -x for the replies (default 5); "
        "with piped input after its end, and in listen mode from the start "
        "(default: until the server closes)",
    )
    talk.add_argument(
        "-l",
        "--listen",
        action="store_true",
        help="only print what arrives; read nothing from stdin",
    )
    handshake = parser.add_argument_group("handshake")
    handshake.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra handshake header (repeatable)",
    )
    handshake.add_argument(
        "-s", "--subprotocol", action="append", default=[], help="offer a subprotocol (repeatable)"
    )
    handshake.add_argument("-o", "--origin", help="Origin header")
    handshake.add_argument(
        "-u",
        "--user",
        metavar="USER[:PASSWORD]",
        help="credentials, as curl takes them (Basic; the password is asked for when "
        "left out); default: credentials in the URL, else netrc",
    )
    handshake.add_argument(
        "--digest", action="store_true", help="use Digest auth with the -u credentials"
    )
    handshake.add_argument("--no-compression", action="store_true", help="do not offer deflate")
    handshake.add_argument(
        "--open-timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="bound on opening: TCP, proxy, TLS, handshake, redirects, auth (default 10)",
    )
    handshake.add_argument(
        "--ping-interval",
        type=_non_negative,
        default=20.0,
        metavar="SECONDS",
        help="keepalive ping interval, 0 for none (default 20)",
    )
    network = parser.add_argument_group("proxies and TLS")
    network.add_argument(
        "--proxy",
        help="proxy URL (http, https, socks4, socks5, socks5h; user:password@ allowed); "
        "default: the environment's",
    )
    network.add_argument("--no-proxy", action="store_true", help="connect directly")
    network.add_argument("--cacert", metavar="FILE", help="CA bundle to verify the server")
    network.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify TLS certificates"
    )
    network.add_argument("--cert", metavar="FILE", help="client certificate (PEM)")
    network.add_argument("--key", metavar="FILE", help="the client certificate's key (PEM)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the handshake, proxy exchanges and every frame on stderr (credentials masked)",
    )
    return parser


def _check_text(parser: _Parser, option: str, text: str) -> None:
    for character, name in (("\r", "CR"), ("\n", "LF"), ("\x00", "NUL")):
        if character in text:
            parser.error(f"{option} contains a {name} character")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and check every argument before any I/O; bad ones exit with status 2."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    scheme = urllib.parse.urlsplit(args.url).scheme.lower()
    if scheme not in ("ws", "wss"):
        parser.error(f"url must start with ws:// or wss://, got {_mask_url(args.url)!r}")
    headers: dict[str, str] = {}
    for header in args.header:
        _check_text(parser, "-H", header)
        name, separator, value = header.partition(":")
        if not separator or not name.strip():
            parser.error(f"-H {_mask_header_option(header)!r} must look like 'Name: value'")
        headers[name.strip()] = value.strip()
    args.headers = headers
    for option, value in (("-o", args.origin), ("-u", args.user)):
        if value is not None:
            _check_text(parser, option, value)
    for subprotocol in args.subprotocol:
        _check_text(parser, "-s", subprotocol)
    if args.digest and args.user is None:
        parser.error("--digest needs -u USER[:PASSWORD]")
    if args.user is not None and not args.user.partition(":")[0]:
        parser.error("-u needs a user name before the ':'")
    if args.no_proxy and args.proxy:
        parser.error("--proxy and --no-proxy exclude each other")
    if args.proxy:
        proxy_scheme = urllib.parse.urlsplit(args.proxy).scheme.lower()
        if proxy_scheme not in ("http", "https", "socks4", "socks4a", "socks5", "socks5h"):
            parser.error(
                f"--proxy {_mask_url(args.proxy)!r} must start with http://, https://, "
                "socks4://, socks4a://, socks5:// or socks5h://"
            )
    if args.insecure and args.cacert:
        parser.error("-k and --cacert exclude each other")
    if args.key and not args.cert:
        parser.error("--key needs --cert")
    for option, path in (("--cacert", args.cacert), ("--cert", args.cert), ("--key", args.key)):
        if path is not None and not os.path.isfile(path):
            parser.error(f"{option} {path!r}: no such file")
    if args.listen and args.execute:
        parser.error("--listen and -x exclude each other")
    if args.user is not None and ":" not in args.user:
        if not sys.stdin.isatty():
            parser.error("-u USER without a password needs a terminal to ask for it")
        args.user = f"{args.user}:{getpass.getpass(f'password for {args.user}: ')}"
    return args


# -- masking secrets ---------------------------------------------------------------


def _mask_url(url: str) -> str:
    """The URL as given, with the password (if any) replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("@")[-1] if "@" in url else url
    if password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _mask_header(name: str, value: str) -> str:
    """A header value fit to print: credentials and cookie values masked."""
    lower = name.lower()
    if lower in _SECRET_HEADERS:
        scheme, separator, _ = value.partition(" ")
        return f"{scheme} ***" if separator else "***"
    if lower == "cookie":
        return "; ".join(
            f"{pair.partition('=')[0].strip()}=***" for pair in value.split(";") if pair.strip()
        )
    if lower == "set-cookie":
        first, separator, attributes = value.partition(";")
        return f"{first.partition('=')[0].strip()}=***" + (separator + attributes)
    return value


def _mask_header_option(header: str) -> str:
    name, separator, value = header.partition(":")
    return f"{name}:{_mask_header(name.strip(), value.strip())}" if separator else header


# -- the connection ---------------------------------------------------------------


def _connect(args: argparse.Namespace) -> ClientConnection:
    session = Session()
    kwargs: dict[str, Any] = {
        "compression": None if args.no_compression else "deflate",
        "ping_interval": args.ping_interval or None,
        "open_timeout": args.open_timeout,
        "subprotocols": args.subprotocol or None,
        "origin": args.origin,
    }
    if args.headers:
        kwargs["additional_headers"] = args.headers
    if args.user is not None:
        user, _, password = args.user.partition(":")
        kwargs["auth"] = (
            requests.auth.HTTPDigestAuth(user, password)
            if args.digest
            else requests.auth.HTTPBasicAuth(user, password)
        )
    if args.no_proxy:
        kwargs["proxy"] = None
    elif args.proxy:
        kwargs["proxy"] = args.proxy
    if args.insecure:
        kwargs["verify"] = False
    elif args.cacert:
        kwargs["verify"] = args.cacert
        if args.proxy and args.proxy.lower().startswith("https:"):
            kwargs["proxy_ssl"] = ssl.create_default_context(cafile=args.cacert)
    if args.cert:
        kwargs["cert"] = (args.cert, args.key) if args.key else args.cert
    return session.ws_connect(args.url, **kwargs)


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in the calling thread; threads started meanwhile inherit
    the mask, so Ctrl-C always reaches the main thread (where the prompt is)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: Ctrl-C goes to main
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    with _sigint_blocked():
        thread.start()
    return thread


def _connect_interruptibly(args: argparse.Namespace) -> ClientConnection:
    """Connect in a helper thread (whose threads, the connection's included,
    never take SIGINT); the main thread waits, and Ctrl-C interrupts it."""
    outcome: list[ClientConnection | BaseException] = []

    def connect() -> None:
        try:
            outcome.append(_connect(args))
        except BaseException as exc:
            outcome.append(exc)

    _start_thread(connect, "requests_ws-cli-connect").join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _ws_url(http_url: str) -> str:
    parts = urllib.parse.urlsplit(http_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return _mask_url(urllib.parse.urlunsplit(parts._replace(scheme=scheme)))


def _host_header(http_url: str) -> str:
    parts = urllib.parse.urlsplit(http_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme in ("https", "wss") else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _show_response(response: requests.Response, out: TextIO) -> None:
    for earlier in response.history:
        print(f"< HTTP {earlier.status_code} {earlier.reason} ({_ws_url(earlier.url)})", file=out)
        for name, value in earlier.headers.items():
            print(f"<   {name}: {_mask_header(name, value)}", file=out)
    print(f"< HTTP {response.status_code} {response.reason}", file=out)
    for name, value in response.headers.items():
        print(f"< {name}: {_mask_header(name, value)}", file=out)


def _show_handshake(ws: ClientConnection, out: TextIO) -> None:
    request, response = ws.request, ws.response
    if request is not None and request.url is not None:
        target = urllib.parse.urlsplit(request.url)
        path = urllib.parse.urlunsplit(("", "", target.path or "/", target.query, ""))
        print(f"> {request.method} {path} HTTP/1.1  ({_ws_url(request.url)})", file=out)
        if "Host" not in request.headers:
            print(f"> Host: {_host_header(request.url)}", file=out)
        for name, value in request.headers.items():
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            print(f"> {name}: {_mask_header(name, text)}", file=out)
    if response is not None:
        _show_response(response, out)
    if ws.remote_address is not None:
        print(f"* connected to {ws.remote_address} from {ws.local_address}", file=out)


class _VerboseFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        source = record.name.removeprefix("requests_ws.").removeprefix("requests_ws")
        text = record.getMessage()
        return f"[{source}] {text}" if source not in ("", "client", "cli") else text


class _VerboseHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The ``--verbose`` handler; remembers the logger level it replaced."""

    previous_level = logging.NOTSET


def _enable_verbose(out: TextIO) -> _VerboseHandler:
    """Show every record of the ``requests_ws`` logger hierarchy (the
    connection's frames, ``requests_ws.proxy``'s CONNECT exchange...)."""
    handler = _VerboseHandler(out)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(_VerboseFormatter())
    logger = logging.getLogger("requests_ws")
    handler.previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def _disable_verbose(handler: _VerboseHandler) -> None:
    logger = logging.getLogger("requests_ws")
    logger.removeHandler(handler)
    logger.setLevel(handler.previous_level)


# -- printing ---------------------------------------------------------------------


class _Output:
    """Prints received messages and notes; knows whether a prompt is showing."""

    def __init__(self, stdout: TextIO, stderr: TextIO, prompt: str | None) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = stdout.isatty()
        # Received messages in color on a terminal, unless NO_COLOR is set.
        self.color = (
            self.terminal
            and not os.environ.get("NO_COLOR")
            and os.environ.get("TERM", "") != "dumb"
        )
        self.prompt = prompt
        self.lock = threading.Lock()

    def message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            text = f"<binary {len(message)} bytes> {message.hex()}"
        elif self.terminal:
            text = message.translate(_TERMINAL_ESCAPES)
        else:
            text = message
        if self.terminal:
            line = f"< {text}"
            self._above_prompt(self.stdout, f"\x1b[34m{line}\x1b[39m" if self.color else line)
        else:
            with self.lock:
                self.stdout.write(text + "\n")
                self.stdout.flush()

    def note(self, text: str) -> None:
        if self.stderr.isatty() and self.prompt is not None:
            self._above_prompt(self.stderr, text)
        else:
            with self.lock:
                self.stderr.write(text + "\n")
                self.stderr.flush()

    def _above_prompt(self, stream: TextIO, text: str) -> None:
        with self.lock:
            if self.prompt is None:
                stream.write(text + "\n")
            else:
                # Save the cursor, open a line above the one being typed, print
                # there, restore the cursor: the half-typed line stays as it is.
                stream.write(f"\x1b7\n\x1b[A\x1b[L{text}\n\x1b8\x1b[B")
            stream.flush()


def _describe_close(ws: ClientConnection) -> tuple[str, int]:
    code = ws.close_code
    if code is None:
        return "connection closed", EXIT_FAILED
    text = str(Close(code, ws.close_reason or ""))
    return f"connection closed: {text}", EXIT_OK if code in _NORMAL_CLOSE_CODES else EXIT_FAILED


# -- modes ------------------------------------------------------------------------


def _receive_until(
    ws: ClientConnection, output: _Output, count: int | None, wait: float | None
) -> int:
    """Print messages until ``count`` came, ``wait`` seconds passed, or the
    server closed; return the exit status."""
    deadline = None if wait is None else time.monotonic() + wait
    received = 0
    while count is None or received < count:
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            message = ws.recv(timeout=timeout)
        except TimeoutError:
            if count is None:
                return EXIT_OK
            output.note(f"error: {received} of {count} messages within {wait} s")
            return EXIT_FAILED
        except ConnectionClosed:
            text, status = _describe_close(ws)
            output.note(text)
            if count is not None and received < count:
                output.note(f"error: {received} of {count} messages before the close")
                return EXIT_FAILED
            return status
        output.message(message)
        received += 1
    return EXIT_OK


class _SessionOver(Exception):
    """Raised in the main thread, out of its blocking read of stdin, when the
    reader thread found the session over."""


class _Reader:
    """Prints messages in a thread while the main thread reads input. When the
    session is over (the server closed, ``-n`` messages came) it interrupts
    the main thread's blocking read with SIGINT, which :meth:`on_sigint`
    turns into :class:`_SessionOver`, so the client exits without waiting
    for another line."""

    def __init__(self, ws: ClientConnection, output: _Output, count: int | None) -> None:
        self.ws = ws
        self.output = output
        self.count = count
        self.status: int | None = None
        self.done = threading.Event()
        self.guard = threading.Lock()
        self.main_reading = False
        self.client_closing = False
        self.over_raised = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = _start_thread(self._run, "requests_ws-cli-reader")

    def _run(self) -> None:
        received = 0
        try:
            while self.count is None or received < self.count:
                message = self.ws.recv()
                self.output.message(message)
                received += 1
            self.status = EXIT_OK
        except ConnectionClosed:
            with self.guard:
                closed_by_server = not self.client_closing
            if closed_by_server:
                text, self.status = _describe_close(self.ws)
                self.output.note(text)
        except Exception as exc:  # the connection failed in a way not foreseen
            self.output.note(f"error: {exc}")
            self.status = EXIT_FAILED
        self.done.set()
        # A signal that lands just before the main thread blocks is seen only
        # at the next one: repeat until the main thread has left its read.
        while True:
            with self.guard:
                if not self.main_reading:
                    return
                _interrupt_main_thread()
            time.sleep(0.05)

    def on_sigint(self, signum: int, frame: object) -> None:
        """The main thread's SIGINT handler while the reader runs."""
        if not self.done.is_set():
            raise KeyboardInterrupt
        if not self.over_raised:
            self.over_raised = True
            raise _SessionOver

    def reading(self, active: bool) -> None:
        """Say whether the main thread is about to block reading stdin."""
        with self.guard:
            self.main_reading = active

    def stop(self) -> int:
        """Close the connection (if the server did not) and return the status."""
        with self.guard:
            self.main_reading = False
            self.client_closing = not self.done.is_set()
        _close_quietly(self.ws)
        if self.thread is not None:
            self.thread.join(5)
        return EXIT_OK if self.status is None else self.status


def _interrupt_main_thread() -> None:
    main_thread = threading.main_thread().ident
    if hasattr(signal, "pthread_kill") and main_thread is not None:
        # A signal to the main thread itself interrupts its blocking read().
        signal.pthread_kill(main_thread, signal.SIGINT)
    else:  # Windows
        import _thread

        _thread.interrupt_main()


def _input_lines(prompt: str | None) -> Iterator[str]:
    if prompt is None:
        for line in sys.stdin:
            yield line.rstrip("\r\n")
        return
    while True:
        try:
            yield input(prompt)
        except EOFError:
            return


def _converse(ws: ClientConnection, args: argparse.Namespace, output: _Output) -> int:
    """Interactive or piped: the main thread sends what it reads from stdin
    while a reader thread prints what arrives."""
    reader = _Reader(ws, output, args.count)
    previous = signal.signal(signal.SIGINT, reader.on_sigint)
    try:
        reader.start()
        lines = _input_lines(output.prompt)
        while True:
            reader.reading(True)
            if reader.done.is_set():
                break
            line = next(lines, None)
            reader.reading(False)
            if line is None:  # end of input
                if output.prompt is not None:
                    output.stdout.write("\n")  # Ctrl-D left the cursor after the prompt
                elif not sys.stdin.isatty():
                    reader.done.wait(args.wait)
                break
            ws.send(line)
    except _SessionOver:
        pass
    except KeyboardInterrupt:
        reader.stop()
        raise
    except ConnectionClosed:
        reader.done.wait(5)
    finally:
        reader.reading(False)
        signal.signal(signal.SIGINT, previous)
    return reader.stop()


def _run(ws: ClientConnection, args: argparse.Namespace, output: _Output) -> int:
    if args.execute:
        for message in args.execute:
            ws.send(message)
        count = len(args.execute) if args.count is None else args.count
        return _receive_until(ws, output, count, 5.0 if args.wait is None else args.wait)
    if args.listen or args.count is not None:
        return _receive_until(ws, output, args.count, args.wait)
    return _converse(ws, args, output)


def _use_readline() -> None:
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:  # Windows: input() has the console's own editing
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command-line client; return the exit status."""
    args = _parse_args(argv)
    handler = _enable_verbose(sys.stderr) if args.verbose else None
    try:
        return _session(args)
    finally:
        if handler is not None:
            _disable_verbose(handler)


def _session(args: argparse.Namespace) -> int:
    """Connect, run the mode, close; return the exit status."""
    interactive = sys.stdin.isatty() and not args.execute and not args.listen
    interactive = interactive and args.count is None
    prompt = "> " if interactive and sys.stdout.isatty() else None
    if interactive:
        _use_readline()
    output = _Output(sys.stdout, sys.stderr, None)
    try:
        ws = _connect_interruptibly(args)
    except KeyboardInterrupt:
        print("interrupted while connecting", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (WebSocketException, requests.exceptions.RequestException, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        response = getattr(exc, "response", None)
        if args.verbose and isinstance(response, requests.Response):
            _show_response(response, sys.stderr)
        return EXIT_USAGE
    if args.verbose:
        _show_handshake(ws, sys.stderr)
    note = f"connected to {_mask_url(args.url)}"
    if ws.subprotocol:
        note += f" (subprotocol {ws.subprotocol})"
    if interactive:
        note += "; Ctrl-D or Ctrl-C to close"
    print(note, file=sys.stderr, flush=True)
    output.prompt = prompt
    status = EXIT_OK
    try:
        status = _run(ws, args, output)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
        if prompt is not None:
            sys.stdout.write("\n")
    except ConnectionClosed:
        text, status = _describe_close(ws)
        output.note(text)
    finally:
        output.prompt = None
        _close_quietly(ws)
    return status


def _close_quietly(ws: ClientConnection) -> None:
    try:
        ws.close()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
