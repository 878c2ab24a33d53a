"""A long-running consumer: requests_ws.reconnect() hands out a fresh connection
after each disconnection, with exponential backoff and jitter. The server's
/one-reply endpoint answers once and closes.

Run: python examples/reconnect_loop.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os

import requests_ws

URI = os.environ.get("WS_URI", "ws://localhost:8765/one-reply")
WANTED = int(os.environ.get("WANTED", "3"))

received = 0
for ws in requests_ws.reconnect(URI, min_delay=0.1, max_delay=2.0):
    try:
        ws.send("next")
        for message in ws:
            print(f"received: {message}")
            received += 1
            if received >= WANTED:
                break
            ws.send("next")
    except requests_ws.ConnectionClosedError:
        print("connection lost, reconnecting")
        continue
    if received >= WANTED:
        break
    print("server closed, reconnecting")
print("done")
