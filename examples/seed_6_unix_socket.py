"""Seed example 6, Unix socket: only the import changed (path from WS_UNIX_PATH).

POSIX only; the server listens on /tmp/websocket.sock too.

Run: python examples/seed_6_unix_socket.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

from requests_ws import unix_connect

PATH = os.environ.get("WS_UNIX_PATH", "/tmp/websocket.sock")


def unix_client():
    """Client connecting via Unix domain socket."""
    try:
        with unix_connect(PATH) as websocket:
            print("Connected via Unix socket")
            # Send message
            websocket.send("Hello via Unix socket!")
            # Receive response
            response = websocket.recv()
            print(f"Response: {response}")
    except FileNotFoundError:
        print("Unix socket not found - is the server running?")
    except Exception as e:
        print(f"Unix socket error: {e}")


unix_client()
