"""What idle requests_ws connections cost: the idle half of the client benchmark.

Run by bench_clients.py in a child process of its own:
``python idle_cost.py --port P --connections N --seconds S`` opens N
connections with default settings (keepalive on, compression negotiated) to
the local echo server at 127.0.0.1:P, lets them sit for S seconds and prints
one JSON line: the process's CPU time over that window as a percentage of one
core (``os.times``), and its resident memory growth per connection (VmRSS
from /proc/self/status, where the platform has it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from typing import Any

# Each connection holds three descriptors: its socket and a socketpair.
FDS_PER_CONNECTION = 3
# Time for the connections just opened to reach their idle state (each
# background thread takes the read role after the grace period).
SETTLE_SECONDS = 1.0


def resident_bytes() -> int | None:
    """The process's resident set size, or None where /proc is not there."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def raise_fd_limit(needed: int) -> tuple[int, int] | None:
    """Raise the soft RLIMIT_NOFILE towards ``needed``; return (soft, hard) or None."""
    try:
        import resource
    except ImportError:  # Windows: no descriptor limit of this kind
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft, hard


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def measure(port: int, count: int, seconds: float) -> dict[str, Any]:
    import requests_ws

    limit = raise_fd_limit(count * FDS_PER_CONNECTION + 64)
    if limit is not None and limit[0] < count * FDS_PER_CONNECTION + 64:
        count = max(1, (limit[0] - 64) // FDS_PER_CONNECTION)
        print(f"warning: descriptor limit {limit[0]}: opening {count} connections", file=sys.stderr)
    uri = f"ws://127.0.0.1:{port}/"
    # One connection first, so that lazy imports and caches are not counted.
    requests_ws.connect(uri).close()
    gc.collect()
    rss_before = resident_bytes()
    connections = []
    try:
        opened_at = time.monotonic()
        for _ in range(count):
            connections.append(requests_ws.connect(uri))
        open_seconds = time.monotonic() - opened_at
        time.sleep(SETTLE_SECONDS)
        cpu_before, wall_before = cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        cpu_after, wall_after = cpu_seconds(), time.monotonic()
        rss_after = resident_bytes()
        still_open = sum(1 for connection in connections if not connection.closed)
        threads = threading.active_count()
    finally:
        for connection in connections:
            connection.close()
    window = wall_after - wall_before
    per_connection = None
    if rss_before is not None and rss_after is not None:
        per_connection = (rss_after - rss_before) / count / 1024
    return {
        "connections": count,
        "still_open": still_open,
        "threads": threads,
        "open_seconds": round(open_seconds, 3),
        "window_seconds": round(window, 3),
        "cpu_percent_of_one_core": 100 * (cpu_after - cpu_before) / window,
        "rss_kib_per_connection": per_connection,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    print(json.dumps(measure(args.port, args.connections, args.seconds)))


if __name__ == "__main__":
    main()
