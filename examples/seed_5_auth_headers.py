"""Seed example 5, auth headers: only the import changed (URI from WS_URI).

The server answers VERIFY_AUTH with AUTH_OK when the Authorization header
carries username:password, and picks the "chat" subprotocol.

Run: python examples/seed_5_auth_headers.py
     (with ``python examples/server.py`` running in another terminal)
"""

import base64
import os

from requests_ws import connect

URI = os.environ.get("WS_URI", "ws://localhost:8765")


def authenticated_client():
    """Client with custom headers and authentication."""
    # Prepare authentication header
    credentials = base64.b64encode(b"username:password").decode()
    headers = {
        "Authorization": f"Basic {credentials}",
        "X-Client-Version": "1.0",
        "X-Client-Type": "Python-Sync",
    }
    try:
        with connect(
            URI,
            additional_headers=headers,
            subprotocols=["chat", "notifications"],
            compression="deflate",
        ) as websocket:
            print(f"Connected with subprotocol: {websocket.subprotocol}")
            # Send authentication verification
            websocket.send("VERIFY_AUTH")
            auth_response = websocket.recv()
            if auth_response == "AUTH_OK":
                print("Authentication successful")
                # Normal operation
                websocket.send("GET_STATUS")
                status = websocket.recv()
                print(f"Status: {status}")
            else:
                print("Authentication failed")
    except Exception as e:
        print(f"Authentication error: {e}")


authenticated_client()
