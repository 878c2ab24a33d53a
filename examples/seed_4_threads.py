"""Seed example 4, threads: only the imports changed (URI from WS_URI).

Run: python examples/seed_4_threads.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os
import threading
import time

from requests_ws import ConnectionClosed, connect

URI = os.environ.get("WS_URI", "ws://localhost:8765")


def worker_thread(thread_id: int, uri: str):
    """Worker thread with independent WebSocket connection."""
    try:
        with connect(uri) as websocket:
            print(f"Thread {thread_id}: Connected")
            # Send periodic messages
            for i in range(5):
                message = f"Thread {thread_id}, Message {i}"
                websocket.send(message)
                try:
                    response = websocket.recv(timeout=2.0)
                    print(f"Thread {thread_id}: {response}")
                except Exception as e:
                    print(f"Thread {thread_id}: Error - {e}")
                time.sleep(1)
    except ConnectionClosed as e:
        print(f"Thread {thread_id}: Connection closed - {e}")


def multi_threaded_client():
    """Example using multiple threads with sync connections."""
    threads = []
    uri = URI
    # Create multiple worker threads
    for i in range(3):
        thread = threading.Thread(target=worker_thread, args=(i, uri))
        threads.append(thread)
        thread.start()
    # Wait for all threads to complete
    for thread in threads:
        thread.join()
    print("All threads completed")


multi_threaded_client()
