"""Fallback echo server for the benchmark when Node's `ws` is not installed:
websockets' asyncio server, permessage-deflate available, no size limit.
Prints "PORT <n>" once listening on 127.0.0.1."""

from __future__ import annotations

import asyncio
import signal

from websockets.asyncio.server import ServerConnection, serve


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(echo, "127.0.0.1", 0, max_size=None, ping_interval=None) as server:
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
