"""Sans-I/O benchmark: requests_ws.protocol.ClientProtocol against websockets'
own sans-I/O client (websockets.client.ClientProtocol, created in the OPEN
state), on the same bytes, plus masking throughput.

Parsing feeds unmasked server frames with ``receive_data`` and drains
``events_received()``; serializing produces masked client frames
(``send_data`` against ``send_text``/``send_binary`` + ``data_to_send()``).
Every case runs several rounds; the table shows medians and the ratio
requests_ws / websockets (above 1: requests_ws is faster). Note that our text
events carry decoded ``str`` (UTF-8 validated as it arrives), websockets'
frames carry raw bytes that its connection layer decodes later.

Run: python benchmarks/bench_protocol.py [--rounds N] [--profile CASE]
"""

from __future__ import annotations

import argparse
import codecs
import cProfile
import os
import pstats
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.client import ClientProtocol as TheirClientProtocol
from websockets.frames import Frame as TheirFrame
from websockets.frames import Opcode as TheirOpcode
from websockets.frames import apply_mask as their_mask  # type: ignore[attr-defined]
from websockets.protocol import State as TheirState
from websockets.uri import parse_uri

from requests_ws import masking
from requests_ws.frames import OP_BINARY, OP_CONT, OP_TEXT, serialize_frame
from requests_ws.protocol import ClientProtocol

FRAMES = 100_000
URI = parse_uri("ws://localhost/")


def theirs() -> TheirClientProtocol:
    return TheirClientProtocol(URI, state=TheirState.OPEN, max_size=None)


# -- parsing ------------------------------------------------------------------------


def parse_ours(data: bytes, chunk: int) -> int:
    protocol = ClientProtocol(max_size=None)
    receive, drain = protocol.receive_data, protocol.events_received
    events = 0
    for start in range(0, len(data), chunk):
        receive(data[start : start + chunk])
        events += len(drain())
    return events


def parse_theirs(data: bytes, chunk: int) -> int:
    protocol = theirs()
    receive, drain = protocol.receive_data, protocol.events_received
    events = 0
    for start in range(0, len(data), chunk):
        receive(data[start : start + chunk])
        events += len(drain())
    return events


def parse_theirs_decoding(data: bytes, chunk: int) -> int:
    """websockets plus the UTF-8 decoding its connection layer does for text
    (which our protocol does while parsing): the like-for-like comparison."""
    protocol = theirs()
    receive, drain = protocol.receive_data, protocol.events_received
    decoder = codecs.getincrementaldecoder("utf-8")()
    events = 0
    for start in range(0, len(data), chunk):
        receive(data[start : start + chunk])
        frames = drain()
        for frame in frames:
            assert isinstance(frame, TheirFrame)
            if frame.opcode is TheirOpcode.TEXT and frame.fin:
                bytes(frame.data).decode() if isinstance(
                    frame.data, memoryview
                ) else frame.data.decode()
            elif frame.opcode is TheirOpcode.TEXT or frame.opcode is TheirOpcode.CONT:
                decoder.decode(frame.data, frame.fin)
        events += len(frames)
    return events


def fragmented_message(opcode: int, fragment: bytes, count: int) -> bytes:
    frames = [serialize_frame(opcode, fragment, fin=False, mask=False)]
    frames += [serialize_frame(OP_CONT, fragment, fin=False, mask=False)] * (count - 2)
    frames.append(serialize_frame(OP_CONT, fragment, mask=False))
    return b"".join(frames)


# -- serializing -----------------------------------------------------------------------


def send_ours(opcode: int, payload: bytes, count: int, fragments: int) -> int:
    protocol = ClientProtocol()
    send = protocol.send_data
    total = 0
    if fragments == 1:
        for _ in range(count):
            header, body = send(opcode, payload)
            total += len(header) + len(body)
        return total
    for _ in range(count // fragments):
        header, body = send(opcode, payload, False)
        total += len(header) + len(body)
        for _ in range(fragments - 2):
            header, body = send(OP_CONT, payload, False)
            total += len(header) + len(body)
        header, body = send(OP_CONT, payload, True)
        total += len(header) + len(body)
    return total


def send_theirs(opcode: int, payload: bytes, count: int, fragments: int) -> int:
    protocol = theirs()
    send = protocol.send_text if opcode == OP_TEXT else protocol.send_binary
    flush = protocol.data_to_send
    total = 0
    if fragments == 1:
        for _ in range(count):
            send(payload)
            total += sum(map(len, flush()))
        return total
    for _ in range(count // fragments):
        send(payload, fin=False)
        total += sum(map(len, flush()))
        for _ in range(fragments - 2):
            protocol.send_continuation(payload, fin=False)
            total += sum(map(len, flush()))
        protocol.send_continuation(payload, fin=True)
        total += sum(map(len, flush()))
    return total


# -- harness ------------------------------------------------------------------------------


def median_rate(work: Callable[[], object], units: int, rounds: int) -> float:
    work()  # warm-up
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        rates.append(units / (time.perf_counter() - start))
    return statistics.median(rates)


@dataclass
class Case:
    name: str
    frames: int
    ours: Callable[[], int]
    theirs: Callable[[], int]
    theirs_decoding: Callable[[], int] | None = None


def cases() -> list[Case]:
    result = []

    def parse(name: str, data: bytes, frames: int, chunk: int) -> None:
        expected_ours = parse_ours(data, chunk)
        expected_theirs = parse_theirs(data, chunk)
        assert expected_ours == expected_theirs == frames, (name, expected_ours, expected_theirs)
        decoding = None
        if "text" in name:
            assert parse_theirs_decoding(data, chunk) == frames
            decoding = lambda: parse_theirs_decoding(data, chunk)  # noqa: E731
        result.append(
            Case(
                name,
                frames,
                lambda: parse_ours(data, chunk),
                lambda: parse_theirs(data, chunk),
                decoding,
            )
        )

    small_text = serialize_frame(OP_TEXT, b"0123456789abcdef", mask=False)
    small_binary = serialize_frame(OP_BINARY, bytes(range(16)), mask=False)
    parse("parse 100k 16 B text frames, 64 KiB reads", small_text * FRAMES, FRAMES, 65536)
    parse("parse 100k 16 B text frames, one read each", small_text * FRAMES, FRAMES, 18)
    parse("parse 100k 16 B binary frames, 64 KiB reads", small_binary * FRAMES, FRAMES, 65536)
    parse(
        "parse 10k text messages x 10 fragments of 16 B",
        fragmented_message(OP_TEXT, b"0123456789abcdef", 10) * (FRAMES // 10),
        FRAMES,
        65536,
    )
    parse(
        "parse 1k binary messages x 100 fragments of 16 B",
        fragmented_message(OP_BINARY, bytes(16), 100) * (FRAMES // 100),
        FRAMES,
        65536,
    )
    big_text = serialize_frame(OP_TEXT, b"x" * 65536, mask=False)
    big_binary = serialize_frame(OP_BINARY, os.urandom(65536), mask=False)
    parse("parse 1k 64 KiB text frames, 64 KiB reads", big_text * 1000, 1000, 65536)
    parse("parse 1k 64 KiB binary frames, 64 KiB reads", big_binary * 1000, 1000, 65536)

    def send(name: str, opcode: int, payload: bytes, count: int, fragments: int) -> None:
        ours = send_ours(opcode, payload, count, fragments)
        assert ours == send_theirs(opcode, payload, count, fragments), name
        result.append(
            Case(
                name,
                count,
                lambda: send_ours(opcode, payload, count, fragments),
                lambda: send_theirs(opcode, payload, count, fragments),
            )
        )

    send("serialize 100k 16 B text frames (masked)", OP_TEXT, b"0123456789abcdef", FRAMES, 1)
    send("serialize 100k 16 B binary frames (masked)", OP_BINARY, bytes(16), FRAMES, 1)
    send("serialize 10k text messages x 10 fragments", OP_TEXT, b"0123456789abcdef", FRAMES, 10)
    send("serialize 1k 64 KiB binary frames (masked)", OP_BINARY, os.urandom(65536), 1000, 1)
    return result


def profile(case: Case) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        case.ours()
    profiler.disable()
    print(f"\ncProfile of requests_ws on: {case.name}")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--profile", metavar="WORDS", help="cProfile the cases whose name has WORDS"
    )
    parser.add_argument("--no-masking", action="store_true", help="skip the masking table")
    args = parser.parse_args()

    print(f"masking: {'C accelerator' if masking.ACCELERATED else 'pure Python'} active")
    print(f"rounds: {args.rounds}, median of each\n")
    print("| case | requests_ws | websockets | ratio | websockets + UTF-8 decode | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    all_cases = cases()
    for case in all_cases:
        ours = median_rate(case.ours, case.frames, args.rounds)
        theirs_rate = median_rate(case.theirs, case.frames, args.rounds)
        row = (
            f"| {case.name} | {ours:,.0f} frames/s | {theirs_rate:,.0f} frames/s "
            f"| {ours / theirs_rate:.2f} |"
        )
        if case.theirs_decoding is None:
            row += " | |"
        else:
            decoding = median_rate(case.theirs_decoding, case.frames, args.rounds)
            row += f" {decoding:,.0f} frames/s | {ours / decoding:.2f} |"
        print(row, flush=True)
    if args.profile:
        for case in all_cases:
            if args.profile in case.name:
                profile(case)

    if args.no_masking:
        return
    print("\n| masking | pure Python | C accelerator | websockets |")
    print("|---|---:|---:|---:|")
    key = os.urandom(4)
    for size in (16, 125, 1024, 65536, 2**20):
        data = os.urandom(size)
        repeat = max(10, 2 * 2**20 // size)
        cells = []
        for function in (masking.apply_mask_python, masking.apply_mask_c, their_mask):
            if function is None:
                cells.append("n/a")
                continue

            def work(
                f: Callable[[bytes, bytes], bytes] = function, d: bytes = data, n: int = repeat
            ) -> object:
                return [f(d, key) for _ in range(n)]

            rate = median_rate(work, repeat, args.rounds)
            cells.append(f"{rate * size / 1e9:.2f} GB/s ({1e9 / rate:,.0f} ns)")
        print(f"| {size} B | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
