"""Seed example 1, basic client: only the import changed (URI from WS_URI).

Run: python examples/seed_1_basic.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

from requests_ws import connect

URI = os.environ.get("WS_URI", "ws://localhost:8765")


def basic_client():
    """Simple synchronous WebSocket client."""
    with connect(URI) as websocket:
        # Send a message
        websocket.send("Hello, Server!")
        # Receive response
        response = websocket.recv()
        print(f"Server response: {response}")


# Run the client
basic_client()
