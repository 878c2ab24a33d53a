"""Seed example 7, reconnect: only the imports changed (URI from WS_URI).

The server answers "ping" with "pong" and then closes (1001), so after one
healthy round the example sees the connection lost and ends.
requests_ws also offers ``requests_ws.reconnect()``: see reconnect_loop.py.

Run: python examples/seed_7_reconnect.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os
import time

from requests_ws import ConnectionClosed, InvalidURI, connect

URI = os.environ.get("WS_URI", "ws://localhost:8765")


def robust_client_with_reconnect():
    """Client with automatic reconnection logic."""
    uri = URI
    max_retries = 5
    retry_delay = 2
    for attempt in range(max_retries):
        try:
            print(f"Connection attempt {attempt + 1}")
            with connect(uri, open_timeout=5) as websocket:
                print("Connected successfully")
                # Normal operation
                try:
                    while True:
                        websocket.send("ping")
                        response = websocket.recv(timeout=10)
                        if response == "pong":
                            print("Connection healthy")
                            time.sleep(5)
                        else:
                            print(f"Unexpected response: {response}")
                except ConnectionClosed:
                    print("Connection lost")
                    break
        except KeyboardInterrupt:
            print("Interrupted by user")
            return
        except (ConnectionClosed, InvalidURI) as e:
            print(f"Connection failed: {e}")
            if attempt < max_retries - 1:
                print(f"Retrying in {retry_delay} seconds...")
                time.sleep(retry_delay)
                retry_delay *= 2  # Exponential backoff
            else:
                print("Max retries exceeded")
                break
        except Exception as e:
            print(f"Unexpected error: {e}")
            break


robust_client_with_reconnect()
