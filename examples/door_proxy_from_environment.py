"""Proxies from the environment: HTTP_PROXY for ws://, HTTPS_PROXY for wss://,
ALL_PROXY, NO_PROXY. Nothing to configure: run it with the variables set (the
server prints each CONNECT its proxy tunnels).

Run: HTTP_PROXY=http://localhost:8767 python examples/door_proxy_from_environment.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

import requests_ws

URI = os.environ.get("WS_URI", "ws://localhost:8765/")
with requests_ws.connect(URI) as ws:
    ws.send("hello through the environment's proxy")
    print(ws.recv())
