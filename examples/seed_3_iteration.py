"""Seed example 3, iteration: only the imports changed (URI from WS_URI).

The server streams three messages on "Start streaming"; the loop ends on "stop".

Run: python examples/seed_3_iteration.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

from requests_ws import ConnectionClosed, connect

URI = os.environ.get("WS_URI", "ws://localhost:8765")


def iterator_client():
    """Client using message iteration."""
    try:
        with connect(URI) as websocket:
            # Send initial message
            websocket.send("Start streaming")
            # Iterate over received messages
            for message in websocket:
                print(f"Received: {message}")
                # Send acknowledgment
                websocket.send("ACK")
                # Break on specific message
                if message.lower() == "stop":
                    break
    except ConnectionClosed:
        print("Connection closed by server")


iterator_client()
