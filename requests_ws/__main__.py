"""The command-line client: ``python -m requests_ws URL`` or ``requests-ws URL``.

Interactive like ``wscat``: lines typed are sent, messages received are
printed; Ctrl-D closes the connection cleanly, Ctrl-C too. With ``-x`` it
scripts: send the given messages, print the replies, and exit with a status
that says whether they came. It connects through the requests door, so the
environment's proxies and netrc apply; ``--verbose`` shows the handshake and
every frame, to see what a proxy or server answered.

Exit status: 0 on success, 1 when replies did not come in time or the server
closed with an error, 2 when the connection could not be opened, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

import requests

from .client import Session
from .connection import ClientConnection
from .exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException

__all__ = ["main"]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="requests-ws",
        description="Talk WebSocket from the terminal, through requests "
        "(environment proxies, netrc, CA bundles apply).",
    )
    parser.add_argument("url", help="ws:// or wss:// URL")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra handshake header (repeatable)",
    )
    parser.add_argument(
        "-s", "--subprotocol", action="append", default=[], help="offer a subprotocol (repeatable)"
    )
    parser.add_argument("-o", "--origin", help="Origin header")
    parser.add_argument(
        "--proxy",
        help="proxy URL (http, https, socks4, socks5, socks5h); default: the environment's",
    )
    parser.add_argument("--no-proxy", action="store_true", help="ignore proxies")
    parser.add_argument("--cacert", help="CA bundle to verify the server (and HTTPS proxy)")
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify TLS certificates"
    )
    parser.add_argument("--cert", help="client certificate (PEM, with key or see --key)")
    parser.add_argument("--key", help="client certificate key")
    parser.add_argument("--no-compression", action="store_true", help="do not offer deflate")
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=20.0,
        help="keepalive ping interval in seconds, 0 for none (default 20)",
    )
    parser.add_argument("--open-timeout", type=float, default=10.0)
    parser.add_argument(
        "-x",
        "--execute",
        action="append",
        default=[],
        metavar="MESSAGE",
        help="send MESSAGE (repeatable), print replies, exit",
    )
    parser.add_argument(
        "-n", "--count", type=int, help="replies to wait for with -x (default: one per message)"
    )
    parser.add_argument(
        "-w",
        "--wait",
        type=float,
        default=5.0,
        help="seconds to wait for the replies with -x (default 5)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the handshake and every frame on stderr"
    )
    return parser.parse_args(argv)


def _connect(args: argparse.Namespace) -> ClientConnection:
    session = Session()
    kwargs: dict[str, Any] = {
        "compression": None if args.no_compression else "deflate",
        "ping_interval": args.ping_interval or None,
        "open_timeout": args.open_timeout,
        "subprotocols": args.subprotocol or None,
        "origin": args.origin,
    }
    headers = {}
    for header in args.header:
        name, separator, value = header.partition(":")
        if not separator:
            raise SystemExit(f"error: header {header!r} must look like 'Name: value'")
        headers[name.strip()] = value.strip()
    if headers:
        kwargs["additional_headers"] = headers
    if args.no_proxy:
        kwargs["proxy"] = None
    elif args.proxy:
        kwargs["proxy"] = args.proxy
    if args.insecure:
        kwargs["verify"] = False
    elif args.cacert:
        kwargs["verify"] = args.cacert
        if args.proxy and args.proxy.startswith("https:"):
            kwargs["proxy_ssl"] = ssl.create_default_context(cafile=args.cacert)
    if args.cert:
        kwargs["cert"] = (args.cert, args.key) if args.key else args.cert
    return session.ws_connect(args.url, **kwargs)


def _show_handshake(ws: ClientConnection, out: TextIO) -> None:
    request, response = ws.request, ws.response
    if request is not None:
        print(f"> {request.method} {request.url}", file=out)
        for name, value in request.headers.items():
            print(f"> {name}: {value!s}", file=out)
    if response is not None:
        for earlier in response.history:
            print(f"< HTTP {earlier.status_code} {earlier.reason} ({earlier.url})", file=out)
        print(f"< HTTP {response.status_code} {response.reason}", file=out)
        for name, value in response.headers.items():
            print(f"< {name}: {value}", file=out)


def _format(message: str | bytes) -> str:
    if isinstance(message, bytes):
        return f"<binary {len(message)} bytes> {message[:64].hex()}"
    return message


def _script(ws: ClientConnection, args: argparse.Namespace) -> int:
    for message in args.execute:
        ws.send(message)
    expected = len(args.execute) if args.count is None else args.count
    deadline = time.monotonic() + args.wait
    received = 0
    while received < expected:
        remaining = deadline - time.monotonic()
        try:
            message = ws.recv(timeout=max(remaining, 0))
        except TimeoutError:
            print(f"error: {received} of {expected} replies within {args.wait} s", file=sys.stderr)
            return 1
        print(_format(message), flush=True)
        received += 1
    return 0


def _interactive(ws: ClientConnection) -> int:
    outcome: list[int] = []

    def reader() -> None:
        try:
            for message in ws:
                print(f"< {_format(message)}", flush=True)
            outcome.append(0)
        except ConnectionClosed as exc:
            print(f"connection closed: {exc}", file=sys.stderr, flush=True)
            outcome.append(1)

    thread = threading.Thread(target=reader, name="requests_ws-cli-reader", daemon=True)
    thread.start()
    try:
        for line in sys.stdin:
            if not thread.is_alive():
                break
            ws.send(line.rstrip("\n"))
    except ConnectionClosed:
        pass
    ws.close()
    thread.join(5)
    return outcome[0] if outcome else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command-line client; return the exit status."""
    args = _parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        logging.getLogger("urllib3").setLevel(logging.INFO)
    try:
        ws = _connect(args)
    except (WebSocketException, requests.exceptions.RequestException, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        response = getattr(exc, "response", None)
        if args.verbose and response is not None:
            print(f"< HTTP {response.status_code} {response.reason}", file=sys.stderr)
            for name, value in response.headers.items():
                print(f"< {name}: {value}", file=sys.stderr)
        return 2
    if args.verbose:
        _show_handshake(ws, sys.stderr)
    else:
        print(
            f"connected to {args.url}" + (f" ({ws.subprotocol})" if ws.subprotocol else ""),
            file=sys.stderr,
        )
    try:
        if args.execute:
            return _script(ws, args)
        return _interactive(ws)
    except KeyboardInterrupt:
        return 130
    except ConnectionClosedOK:
        return 0
    except ConnectionClosed as exc:
        print(f"connection closed: {exc}", file=sys.stderr)
        return 1
    finally:
        ws.close()


if __name__ == "__main__":
    sys.exit(main())
