"""A well-behaved peer: the `websockets` asyncio server in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from websockets.asyncio.server import ServerConnection, serve, unix_serve

Handler = Callable[[ServerConnection], Awaitable[None]]


async def echo(ws: ServerConnection) -> None:
    """Echo every message back, text as text and binary as binary."""
    async for message in ws:
        await ws.send(message)


class WsPeer:
    """A running websockets server; ``uri`` is where to connect."""

    def __init__(
        self,
        handler: Handler = echo,
        *,
        ssl_context: ssl.SSLContext | None = None,
        unix_path: str | None = None,
        port: int = 0,
        **serve_kwargs: Any,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.unix_path = unix_path
        serve_kwargs.setdefault("max_size", None)
        serve_kwargs.setdefault("ping_interval", None)
        self.serve_kwargs = serve_kwargs
        self.request_headers: list[Any] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = port
        self._thread = threading.Thread(target=self._run, name="test-server-ws", daemon=True)

    def start(self) -> WsPeer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("websockets server did not start")
        if self._error is not None:
            raise self._error
        return self

    @property
    def uri(self) -> str:
        if self.ssl_context is not None:
            return f"wss://localhost:{self.port}/"
        return f"ws://127.0.0.1:{self.port}/"

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.request_headers.append(ws.request.headers)
        await self.handler(ws)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                if self.unix_path is not None:
                    server_cm: Any = unix_serve(
                        self._handle, self.unix_path, ssl=self.ssl_context, **self.serve_kwargs
                    )
                else:
                    server_cm = serve(
                        self._handle,
                        "127.0.0.1",
                        self.port,
                        ssl=self.ssl_context,
                        **self.serve_kwargs,
                    )
                async with server_cm as server:
                    if self.unix_path is None:
                        self.port = server.sockets[0].getsockname()[1]
                    self._ready.set()
                    await self._stop.wait()
            except BaseException as exc:
                self._error = exc
                self._ready.set()

        asyncio.run(main())

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@contextlib.contextmanager
def ws_peer(handler: Handler = echo, **kwargs: Any) -> Iterator[WsPeer]:
    peer = WsPeer(handler, **kwargs).start()
    try:
        yield peer
    finally:
        peer.stop()
