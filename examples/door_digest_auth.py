"""Digest auth: the 401 challenge and the retry happen inside connect().

Run: python examples/door_digest_auth.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

import requests

import requests_ws

URI = os.environ.get("WS_URI", "ws://localhost:8765/digest")
auth = requests.auth.HTTPDigestAuth(
    os.environ.get("WS_USER", "bob"), os.environ.get("WS_PASSWORD", "pa55")
)
with requests_ws.connect(URI, auth=auth) as ws:
    ws.send("hello with digest auth")
    print(ws.recv())
