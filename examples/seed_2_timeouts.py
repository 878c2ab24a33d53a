"""Seed example 2, timeouts: only the imports changed (URI from WS_URI).

Run: python examples/seed_2_timeouts.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

from requests_ws import ConnectionClosed, TimeoutError, connect

URI = os.environ.get("WS_URI", "ws://localhost:8765")


def timeout_client():
    """Client with timeout handling."""
    try:
        with connect(URI, open_timeout=5, close_timeout=3) as websocket:
            # Send with timeout
            websocket.send("Hello with timeout!", timeout=2.0)
            # Receive with timeout
            try:
                response = websocket.recv(timeout=5.0)
                print(f"Response: {response}")
            except TimeoutError:
                print("No response received within timeout")
            # Test connection with ping
            try:
                latency = websocket.ping(timeout=3.0)
                print(f"Connection latency: {latency:.3f}s")
            except TimeoutError:
                print("Ping timeout - connection may be stale")
    except ConnectionClosed as e:
        print(f"Connection closed: {e}")
    except Exception as e:
        print(f"Connection error: {e}")


timeout_client()
