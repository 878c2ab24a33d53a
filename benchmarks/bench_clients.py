"""Client benchmark: requests_ws against websockets.sync, websocket-client and
a raw-socket client (the physical limit), against one local echo server.

Run: python benchmarks/bench_clients.py [--rounds N] [--quick]

The echo server runs in its own process: Node's `ws` (benchmarks/echo_server.js,
after `npm install` in benchmarks/) or, without Node, websockets' asyncio server.
Each client runs every scenario in a fresh subprocess per round; rounds are
interleaved (the client order rotates) and the table shows medians. Numbers
for the reference clients are ratios to the raw client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = ["raw", "requests_ws", "websockets", "websocket-client"]
SCENARIOS = [
    ("rt16", "16 B round trips", "msg/s", 0.80),
    ("rt1k", "1 KiB round trips", "msg/s", 0.75),
    ("echo1m", "1 MiB binary echo", "MB/s", 0.80),
    ("msg64m", "one 64 MiB message echo", "MB/s", 0.80),
    ("deflate4k", "deflate 4 KiB JSON round trips", "msg/s", 0.50),
    ("connect", "connect + handshake + close", "conn/s", 0.25),
    ("pipelined", "1,000 pipelined 16 B", "msg/s", 0.50),
]
JSON_4K = json.dumps(
    [{"id": i, "name": f"user{i}", "tags": ["a", "b", "c"], "score": i * 1.5} for i in range(60)]
)[:4096]


# -- the clients ---------------------------------------------------------------


class RawClient:
    """WebSocket with trivial framing: zero mask key, no validation, no threads."""

    def __init__(self, port: int, deflate: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        extension = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        self.sock.sendall(
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extension}\r\n"
            ).encode()
        )
        self.buffer = bytearray()
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        end = self.buffer.index(b"\r\n\r\n") + 4
        del self.buffer[:end]
        self.deflate = deflate
        self.compressor = zlib.compressobj(wbits=-15)
        self.decompressor = zlib.decompressobj(wbits=-15)

    def send(self, data: bytes, opcode: int = 2) -> None:
        first = 0x80 | opcode
        if self.deflate:
            data = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
            data = data[:-4]
            first |= 0x40
        n = len(data)
        if n < 126:
            header = struct.pack("!BB", first, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", first, 0xFE, n)
        else:
            header = struct.pack("!BBQ", first, 0xFF, n)
        if n < 65536:
            self.sock.sendall(header + b"\0\0\0\0" + data)
        else:
            self.sock.sendall(header + b"\0\0\0\0")
            self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, min(n - len(self.buffer), 1 << 20)))
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def recv(self) -> bytes:
        self._fill(2)
        first, length = self.buffer[0], self.buffer[1] & 0x7F
        offset = 2
        if length == 126:
            self._fill(4)
            length = struct.unpack_from("!H", self.buffer, 2)[0]
            offset = 4
        elif length == 127:
            self._fill(10)
            length = struct.unpack_from("!Q", self.buffer, 2)[0]
            offset = 10
        if length > 65536:
            # Bulk: read straight into the final buffer.
            target = bytearray(length)
            have = min(len(self.buffer) - offset, length)
            target[:have] = self.buffer[offset : offset + have]
            del self.buffer[: offset + have]
            view = memoryview(target)
            while have < length:
                n = self.sock.recv_into(view[have:], min(length - have, 65536))
                if not n:
                    raise EOFError
                have += n
            data = bytes(target)
        else:
            self._fill(offset + length)
            data = bytes(self.buffer[offset : offset + length])
            del self.buffer[: offset + length]
        if first & 0x40:
            data = self.decompressor.decompress(data + b"\x00\x00\xff\xff")
        return data

    def close(self) -> None:
        self.sock.sendall(b"\x88\x82\0\0\0\0\x03\xe8")
        try:
            self._fill(2)
        except (EOFError, OSError):
            pass
        self.sock.close()


def make_client(name: str, port: int, deflate: bool = False) -> Any:
    uri = f"ws://127.0.0.1:{port}/"
    if name == "raw":
        return RawClient(port, deflate)
    if name == "requests_ws":
        import requests_ws

        return requests_ws.connect(
            uri, compression="deflate" if deflate else None, max_size=None, ping_interval=None
        )
    if name == "websockets":
        from websockets.sync.client import connect

        return connect(
            uri, compression="deflate" if deflate else None, max_size=None, ping_interval=None
        )
    import websocket

    if deflate:
        raise NotImplementedError("websocket-client has no permessage-deflate")
    return websocket.create_connection(uri)


def send_text(client: Any, text: str) -> None:
    if isinstance(client, RawClient):
        client.send(text.encode(), opcode=1)
    else:
        client.send(text)


def send_binary(client: Any, data: bytes) -> None:
    if isinstance(client, RawClient):
        client.send(data)
    elif type(client).__module__.startswith("websocket._"):
        client.send_binary(data)
    else:
        client.send(data)


def timed_loop(duration: float, step: Callable[[], int]) -> float:
    """Run ``step`` (returning units of work) for about ``duration``; return units/s."""
    units = 0
    start = time.perf_counter()
    while True:
        units += step()
        elapsed = time.perf_counter() - start
        if elapsed >= duration:
            return units / elapsed


def run_scenario(name: str, scenario: str, port: int, duration: float) -> float:
    if scenario == "connect":

        def once() -> int:
            make_client(name, port).close()
            return 1

        return timed_loop(duration, once)
    client = make_client(name, port, deflate=scenario == "deflate4k")
    try:
        if scenario in ("rt16", "rt1k", "deflate4k"):
            message = {"rt16": "x" * 16, "rt1k": "x" * 1024, "deflate4k": JSON_4K}[scenario]

            def round_trip() -> int:
                for _ in range(50):
                    send_text(client, message)
                    client.recv()
                return 50

            return timed_loop(duration, round_trip)
        if scenario == "pipelined":

            def burst() -> int:
                for _ in range(1000):
                    send_text(client, "x" * 16)
                for _ in range(1000):
                    client.recv()
                return 1000

            return timed_loop(duration, burst)
        if scenario == "echo1m":
            data = os.urandom(2**20)

            def echo() -> int:
                send_binary(client, data)
                assert len(client.recv()) == len(data)
                return 1

            return timed_loop(duration, echo)
        if scenario == "msg64m":
            data = os.urandom(64 * 2**20)
            start = time.perf_counter()
            send_binary(client, data)
            received = client.recv()
            elapsed = time.perf_counter() - start
            assert len(received) == len(data)
            return 64 / elapsed
        raise ValueError(scenario)
    finally:
        client.close()


def peak_memory(name: str, port: int) -> float:
    """Peak RSS growth (in multiples of the message) while echoing 64 MiB."""

    def hwm() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    client = make_client(name, port)
    data = os.urandom(64 * 2**20)
    base = hwm()
    send_binary(client, data)
    client.recv()
    client.close()
    return (hwm() - base) / len(data)


def child_main(args: argparse.Namespace) -> None:
    if args.memory:
        print(json.dumps({"memory": peak_memory(args.child, args.port)}))
        return
    results: dict[str, float] = {}
    for scenario, *_ in SCENARIOS:
        if scenario == "deflate4k" and args.child == "websocket-client":
            continue
        results[scenario] = run_scenario(args.child, scenario, args.port, args.duration)
    print(json.dumps(results))


# -- the harness -----------------------------------------------------------------


def start_server() -> tuple[subprocess.Popen[str], int, str]:
    node = shutil.which("node")
    if node and os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        command = [node, os.path.join(HERE, "echo_server.js")]
        label = "Node ws"
    else:
        command = [sys.executable, os.path.join(HERE, "echo_server.py")]
        label = "websockets asyncio (Node ws not installed)"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"echo server did not start: {line!r}")
    return process, int(line.split()[1]), label


def run_child(client: str, port: int, duration: float, memory: bool = False) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", client, "--port", str(port)]
    command += ["--duration", str(duration)]
    if memory:
        command.append("--memory")
    output = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if output.returncode != 0:
        print(f"[{client}] failed: {output.stderr[-2000:]}", file=sys.stderr)
        return {}
    result: dict[str, float] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=0.7, help="seconds per scenario")
    parser.add_argument("--quick", action="store_true", help="1 round, short scenarios")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if args.quick:
        args.rounds, args.duration = 1, 0.3

    import requests_ws.masking

    server, port, label = start_server()
    try:
        samples: dict[str, dict[str, list[float]]] = {c: {} for c in CLIENTS}
        for round_number in range(args.rounds):
            order = CLIENTS[round_number % len(CLIENTS) :] + CLIENTS[: round_number % len(CLIENTS)]
            for client in order:
                for key, value in run_child(client, port, args.duration).items():
                    samples[client].setdefault(key, []).append(value)
        memory = {c: run_child(c, port, 0, memory=True).get("memory") for c in CLIENTS}
    finally:
        server.terminate()
        server.wait(10)

    def median(client: str, key: str) -> float | None:
        values = samples[client].get(key)
        return statistics.median(values) if values else None

    print(f"echo server: {label}; {os.cpu_count()} cores; rounds: {args.rounds}")
    accelerated = requests_ws.masking.ACCELERATED
    print(f"requests_ws masking: {'C accelerator' if accelerated else 'pure Python'}")
    print()
    print("| scenario | raw socket | requests_ws | websockets.sync | websocket-client | target |")
    print("|---|---|---|---|---|---|")
    for key, title, unit, target in SCENARIOS:
        raw = median("raw", key)
        cells = [f"{raw:,.0f} {unit}" if raw else "n/a"]
        for client in CLIENTS[1:]:
            value = median(client, key)
            if value is None or not raw:
                cells.append("n/a")
                continue
            ratio = value / raw
            mark = ""
            if client == "requests_ws":
                mark = " PASS" if ratio >= target else " MISS"
            cells.append(f"{ratio:.2f}{mark}")
        print(f"| {title} | {' | '.join(cells)} | >= {target:.2f} |")
    cells = [f"{memory[c]:.2f}x" if memory.get(c) is not None else "n/a" for c in CLIENTS]
    mark = ""
    if memory.get("requests_ws") is not None:
        mark = " PASS" if memory["requests_ws"] <= 2.5 else " MISS"  # type: ignore[operator]
    print(
        f"| peak memory, 64 MiB message | {' | '.join(cells[:1])} | {cells[1]}{mark} | "
        f"{cells[2]} | {cells[3]} | <= 2.5x |"
    )


if __name__ == "__main__":
    main()
