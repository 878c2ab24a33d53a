"""Instructions per round trip, counted by valgrind's callgrind: deterministic
whatever else runs on the machine, unlike the rates of bench_clients.py.

Run: python benchmarks/instructions.py [--scenarios deflate4k,rt16,rt1k]
         [--clients requests_ws,websockets] [--round-trips N] [--server auto|node|websockets]

For each (scenario, client) the client process runs under callgrind twice,
with N and with 3N round trips after the same connect and warm-up; the
difference divided by 2N is what one round trip costs the client process (all
its threads, user space only: the kernel's share of the system calls is not
counted). The cost is split into zlib's ``deflate()`` and ``inflate()`` calls
(inclusive) and the rest (the interpreter, the client's code, copies, UTF-8
decoding, system call wrappers). ``PYTHONHASHSEED=0`` keeps the runs alike.
The echo server is the one bench_clients.py uses; needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from bench_clients import CLIENTS, JSON_4K, open_client, start_server

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = {"rt16": "x" * 16, "rt1k": "x" * 1024, "deflate4k": JSON_4K}
WARM_UP = 20


def child_main(client: str, scenario: str, port: int, round_trips: int) -> None:
    bound = open_client(client, port, deflate=scenario == "deflate4k")
    message = MESSAGES[scenario]
    for _ in range(WARM_UP):
        bound.send_text(message)
        if bound.recv() != message:
            raise AssertionError(f"{client} echoed another message")
    for _ in range(round_trips):
        bound.send_text(message)
        bound.recv()
    bound.close()


def count(command: list[str]) -> tuple[int, dict[str, int]]:
    """Run ``command`` under callgrind: total instructions, and the inclusive
    counts of zlib's deflate() and inflate()."""
    with tempfile.TemporaryDirectory() as scratch:
        output = os.path.join(scratch, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}", *command],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        report = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", output],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    total = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", report)
    if total is None:
        raise RuntimeError("callgrind_annotate printed no total")
    calls: dict[str, int] = {}
    for match in re.finditer(r"^\s*([\d,]+) \([^)]*\)\s+\S*:(deflate|inflate) \[", report, re.M):
        calls[match.group(2)] = calls.get(match.group(2), 0) + int(match.group(1).replace(",", ""))
    return int(total.group(1).replace(",", "")), calls


def per_round_trip(client: str, scenario: str, port: int, round_trips: int) -> dict[str, float]:
    base = [sys.executable, os.path.abspath(__file__), "--child", client, scenario, str(port)]
    small_total, small = count([*base, str(round_trips)])
    large_total, large = count([*base, str(3 * round_trips)])
    span = 2 * round_trips
    result = {"total": (large_total - small_total) / span}
    for name in ("deflate", "inflate"):
        result[name] = (large.get(name, 0) - small.get(name, 0)) / span
    result["rest"] = result["total"] - result["deflate"] - result["inflate"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="deflate4k", help="deflate4k, rt16, rt1k")
    parser.add_argument("--clients", default="requests_ws,websockets")
    parser.add_argument("--round-trips", type=int, default=200, help="N (default 200)")
    parser.add_argument("--server", default="auto", choices=["auto", "node", "websockets"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        client, scenario, port, round_trips = args.child
        child_main(client, scenario, int(port), int(round_trips))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    scenarios = args.scenarios.split(",")
    clients = args.clients.split(",")
    for name in scenarios + clients:
        if name not in MESSAGES and name not in CLIENTS:
            raise SystemExit(f"unknown scenario or client: {name!r}")
    server, port, label = start_server(args.server)
    try:
        print(f"echo server: {label}; N = {args.round_trips}; instructions per round trip\n")
        print("| scenario | client | total | zlib deflate() | zlib inflate() | rest |")
        print("|---|---|---|---|---|---|")
        for scenario in scenarios:
            for client in clients:
                cost = per_round_trip(client, scenario, port, args.round_trips)
                cells = [f"{cost[key]:,.0f}" for key in ("total", "deflate", "inflate", "rest")]
                print(f"| {scenario} | {CLIENTS[client]} | " + " | ".join(cells) + " |")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
