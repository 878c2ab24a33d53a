"""Sans-I/O benchmark: requests_ws.protocol against websockets' own protocol on
the same input, plus masking throughput of both masking paths.

Run: python benchmarks/bench_protocol.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from websockets.frames import apply_mask as their_mask  # C speedups when built
from websockets.protocol import CLIENT
from websockets.protocol import Protocol as TheirProtocol
from websockets.protocol import State as TheirState

from requests_ws import masking
from requests_ws.frames import OP_BINARY, OP_TEXT, serialize_frame
from requests_ws.protocol import ClientProtocol

FRAMES = 100_000


def parse_ours(data: bytes, chunk: int) -> int:
    protocol = ClientProtocol(max_size=None)
    events = 0
    for start in range(0, len(data), chunk):
        protocol.receive_data(data[start : start + chunk])
        events += len(protocol.events_received())
    return events


def parse_theirs(data: bytes, chunk: int) -> int:
    protocol = TheirProtocol(CLIENT, state=TheirState.OPEN, max_size=None)
    events = 0
    for start in range(0, len(data), chunk):
        protocol.receive_data(data[start : start + chunk])
        events += len(protocol.events_received())
    return events


def serialize_ours(payload: str, count: int) -> int:
    protocol = ClientProtocol()
    total = 0
    for _ in range(count):
        header, body = protocol.send_data(OP_TEXT, payload.encode())
        total += len(header) + len(body)
    return total


def serialize_theirs(payload: str, count: int) -> int:
    protocol = TheirProtocol(CLIENT, state=TheirState.OPEN)
    total = 0
    for _ in range(count):
        protocol.send_text(payload.encode())
        total += sum(len(chunk) for chunk in protocol.data_to_send())
    return total


def best_rate(work: Callable[[], object], units: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        rates.append(units / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    print(f"masking: {'C accelerator' if masking.ACCELERATED else 'pure Python'} active\n")
    print("| case | requests_ws | websockets | ratio |")
    print("|---|---|---|---|")
    cases = [
        ("parse 100k 16 B text frames (64 KiB reads)", b"x" * 16, FRAMES, 65536),
        ("parse 100k 16 B text frames (one read each)", b"x" * 16, FRAMES, 18),
        ("parse 10k 1 KiB text frames", b"x" * 1024, FRAMES // 10, 65536),
        ("parse 1k 64 KiB text frames (ours includes UTF-8 decoding)", b"x" * 65536, 1000, 65536),
        ("parse 1k 64 KiB binary frames", b"x" * 65536, 1000, 65536),
    ]
    for title, payload, count, chunk in cases:
        opcode = OP_BINARY if "binary" in title else OP_TEXT
        data = serialize_frame(opcode, payload, mask=False) * count
        assert parse_ours(data, chunk) == parse_theirs(data, chunk) == count
        ours = best_rate(lambda d=data, c=chunk: parse_ours(d, c), count, args.rounds)
        theirs = best_rate(lambda d=data, c=chunk: parse_theirs(d, c), count, args.rounds)
        print(f"| {title} | {ours:,.0f} frames/s | {theirs:,.0f} frames/s | {ours / theirs:.2f} |")
    for size in (16, 1024):
        text = "x" * size
        ours = best_rate(lambda t=text: serialize_ours(t, FRAMES), FRAMES, args.rounds)
        theirs = best_rate(lambda t=text: serialize_theirs(t, FRAMES), FRAMES, args.rounds)
        print(
            f"| serialize 100k {size} B text frames | {ours:,.0f} frames/s | "
            f"{theirs:,.0f} frames/s | {ours / theirs:.2f} |"
        )

    print("\n| masking | pure Python | C accelerator | websockets | ")
    print("|---|---|---|---|")
    key = os.urandom(4)
    for size in (16, 125, 1024, 65536, 2**20):
        data = os.urandom(size)
        repeat = max(10, 2 * 2**20 // size)
        cells = []
        for function in (masking.apply_mask_python, masking.apply_mask_c, their_mask):
            if function is None:
                cells.append("n/a")
                continue
            rate = best_rate(
                lambda f=function, d=data, n=repeat: [f(d, key) for _ in range(n)],
                repeat,
                args.rounds,
            )
            cells.append(f"{rate * size / 1e9:.2f} GB/s ({1e9 / rate:,.0f} ns)")
        print(f"| {size} B | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
