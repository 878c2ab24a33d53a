"""The README's demo: start a local echo server, then talk to it through both
doors of requests_ws. No external service is needed.

Run: python examples/demo.py
"""

from __future__ import annotations

import asyncio
import threading

from websockets.asyncio.server import ServerConnection, serve

import requests_ws


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def start_echo_server() -> tuple[int, threading.Event]:
    """A websockets echo server on a free loopback port, in a daemon thread."""
    ready = threading.Event()
    stop = threading.Event()
    port: list[int] = []

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(10)
    return port[0], stop


def main() -> None:
    port, stop = start_echo_server()
    uri = f"ws://127.0.0.1:{port}/"
    print(f"echo server listening on {uri}")

    # The seed API: the same names as websockets.sync.client.
    with requests_ws.connect(uri) as ws:
        ws.send("Hello, WebSocket!")
        print("connect():        ", ws.recv())
        print("round trip (ping):", f"{ws.ping() * 1000:.2f} ms")
        print("compression:      ", ws.response.headers.get("Sec-WebSocket-Extensions"))

    # The requests door: the session's headers, cookies, auth and proxies apply.
    session = requests_ws.Session()
    session.headers["X-Demo"] = "requests door"
    with session.ws_connect(uri) as ws:
        ws.send(b"\x00\x01 bytes stay bytes")
        print("Session.ws_connect():", ws.recv())
        print("handshake request headers sent:", dict(ws.request.headers))
    stop.set()
    print("done")


if __name__ == "__main__":
    main()
