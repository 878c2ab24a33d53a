"""Cookies from a login request go out with the WebSocket handshake.

Run: python examples/door_cookies_from_login.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

import requests_ws

LOGIN_URL = os.environ.get("LOGIN_URL", "http://localhost:8765/login")
URI = os.environ.get("WS_URI", "ws://localhost:8765/whoami")

session = requests_ws.Session()
session.get(LOGIN_URL).raise_for_status()  # the server sets a session cookie
with session.ws_connect(URI) as ws:
    ws.send("who am I?")
    print(ws.recv())
