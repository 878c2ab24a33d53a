"""The requests door: credentials set once on a session apply to the handshake."""

import os

import requests_ws

URI = os.environ.get("WS_URI", "ws://localhost:8765/")

session = requests_ws.Session()
session.auth = (os.environ.get("WS_USER", "alice"), os.environ.get("WS_PASSWORD", "s3cret"))
with session.ws_connect(URI) as ws:
    ws.send("hello with session auth")
    print(ws.recv())
