"""The requests door: credentials set once on a session apply to the handshake.

Run: python examples/door_session_auth.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

import requests_ws

URI = os.environ.get("WS_URI", "ws://localhost:8765/basic")

session = requests_ws.Session()
session.auth = (os.environ.get("WS_USER", "alice"), os.environ.get("WS_PASSWORD", "s3cret"))
with session.ws_connect(URI) as ws:
    ws.send("hello with session auth")
    print(ws.recv())
