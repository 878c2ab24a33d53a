"""Client benchmark: requests_ws beside websockets.sync, websocket-client, a raw
socket client and a minimal correct client, against one local echo server.

Run: python benchmarks/bench_clients.py [--rounds N] [--duration S] [--quick]
         [--idle N] [--idle-seconds S] [--json PATH] [--server auto|node|websockets]
         [--clients a,b] [--scenarios rt16,connect,...] [--cpu N]

What one run measures, with the echo server and every client process pinned
to one CPU (so a rate measures CPU per message, the server's share being the
same for every client):

* 16 B and 1 KiB text round trips, 1,000 pipelined 16 B messages, a 1 MiB
  binary echo, one 64 MiB binary message (and the client's peak memory while
  it goes out and comes back, as a multiple of the message), 4 KiB JSON round
  trips with permessage-deflate, and connect + handshake + close; as a rate,
  as ratios to the raw socket client and to the minimal client, and as client
  CPU time per operation;
* the idle cost of ``--idle`` requests_ws connections (default settings,
  keepalive on) over ``--idle-seconds``: CPU as % of one core, RSS per
  connection (benchmarks/idle_cost.py);
* issue 8's targets, each marked met or missed.

The echo server runs in its own process: Node's ``ws`` (benchmarks/echo_server.js,
after ``npm install`` in benchmarks/) or, without it, websockets' asyncio server;
the output says which ran. Every (round, scenario, client) runs in a fresh
subprocess (so the 64 MiB message has a clean memory peak); within a round the
clients take each scenario in turn, in an order that rotates, so that the
clients compared in a scenario ran seconds apart. Rates are medians over the
rounds; ratios are medians of the same-round ratios. requests_ws and websockets.sync
run with their defaults except ``compression`` (off but for the deflate
scenario) and ``max_size=None``. ``--json PATH`` writes the rates for
benchmarks/chart.py. benchmarks/results.md and results.json are the output of
the last full run (the commit measured is in both).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))

# Client key -> the name shown in tables and written to JSON.
CLIENTS = {
    "requests_ws": "requests_ws",
    "websockets": "websockets.sync",
    "websocket-client": "websocket-client",
    "raw": "raw socket",
    "minimal": "minimal client",
}
MiB = 2**20
BIG_MESSAGE = 64 * MiB
JSON_4K = json.dumps(
    [{"id": i, "name": f"user{i}", "tags": ["a", "b", "c"], "score": i * 1.5} for i in range(60)]
)[:4096]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str


SCENARIOS = [
    Scenario("rt16", "16 B round trip", "msg/s"),
    Scenario("rt1k", "1 KiB round trip", "msg/s"),
    Scenario("pipelined", "1,000 pipelined 16 B messages", "msg/s"),
    Scenario("echo1m", "1 MiB echo", "MiB/s"),
    Scenario("msg64m", "one 64 MiB message", "MiB/s"),
    Scenario("deflate4k", "deflate 4 KiB round trip", "msg/s"),
    Scenario("connect", "connect + handshake + close", "conn/s"),
]
TITLES = {scenario.key: scenario.title for scenario in SCENARIOS}


@dataclass(frozen=True)
class Target:
    """requests_ws's rate in ``scenario`` at least ``ratio`` x ``reference``'s."""

    scenario: str
    reference: str
    ratio: float


TARGETS = [
    Target("rt16", "minimal", 0.80),
    Target("rt1k", "minimal", 0.80),
    Target("pipelined", "minimal", 0.60),
    Target("echo1m", "raw", 0.95),
    Target("msg64m", "raw", 0.90),
    Target("deflate4k", "websockets", 1.15),
    Target("connect", "websockets", 1.00),
]
MAX_PEAK_MEMORY = 2.0  # x the 64 MiB message
MAX_IDLE_CPU_PERCENT = 1.0
MAX_IDLE_RSS_KIB = 100.0


# -- the clients, behind one set of callables ----------------------------------


class Bound(NamedTuple):
    """A client's operations, looked up once so that the loops time only the client."""

    send_text: Callable[[str], Any]
    send_binary: Callable[[bytes], Any]
    recv: Callable[[], Any]
    close: Callable[[], Any]


def open_client(name: str, port: int, deflate: bool = False) -> Bound:
    uri = f"ws://127.0.0.1:{port}/"
    compression = "deflate" if deflate else None
    if name in ("raw", "minimal"):
        from baseline_clients import MinimalClient, RawClient

        if name == "raw":
            raw = RawClient(port, deflate)
            return Bound(raw.send_text, raw.send, raw.recv, raw.close)
        minimal = MinimalClient(port, deflate)
        return Bound(minimal.send, minimal.send, minimal.recv, minimal.close)
    if name == "requests_ws":
        import requests_ws

        ws: Any = requests_ws.connect(uri, compression=compression, max_size=None)
        return Bound(ws.send, ws.send, ws.recv, ws.close)
    if name == "websockets":
        import inspect

        from websockets.sync.client import connect

        options: dict[str, Any] = {"compression": compression, "max_size": None}
        if "legacy" in inspect.signature(connect).parameters:
            options["legacy"] = True  # websockets >= 17: connect() returns the connection
        ws = connect(uri, **options)
        return Bound(ws.send, ws.send, ws.recv, ws.close)
    if name == "websocket-client":
        import websocket

        if deflate:
            raise NotImplementedError("websocket-client has no permessage-deflate")
        ws = websocket.create_connection(uri)
        return Bound(ws.send, ws.send_binary, ws.recv, ws.close)
    raise ValueError(f"unknown client {name!r}")


# -- the scenarios (run in a child process) ------------------------------------


def timed_loop(duration: float, step: Callable[[], int]) -> dict[str, float]:
    """Run ``step`` (returning units of work) for about ``duration`` seconds.

    Returns the rate (units/s) and the process's CPU time per unit in µs.
    """
    step()  # warm-up
    units = 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    while True:
        units += step()
        elapsed = time.perf_counter() - start
        if elapsed >= duration:
            break
    cpu = time.process_time() - cpu_start
    return {"rate": units / elapsed, "cpu_us": 1e6 * cpu / units}


def run_scenario(name: str, scenario: str, port: int, duration: float) -> dict[str, float]:
    if scenario == "connect":

        def connect_once() -> int:
            open_client(name, port).close()
            return 1

        return timed_loop(duration, connect_once)
    client = open_client(name, port, deflate=scenario == "deflate4k")
    send_text, send_binary, recv, _ = client
    try:
        if scenario in ("rt16", "rt1k", "deflate4k"):
            message = {"rt16": "x" * 16, "rt1k": "x" * 1024, "deflate4k": JSON_4K}[scenario]

            def round_trips() -> int:
                for _ in range(50):
                    send_text(message)
                    recv()
                return 50

            return timed_loop(duration, round_trips)
        if scenario == "pipelined":
            small = "x" * 16

            def burst() -> int:
                for _ in range(1000):
                    send_text(small)
                for _ in range(1000):
                    recv()
                return 1000

            return timed_loop(duration, burst)
        if scenario == "echo1m":
            data = os.urandom(MiB)

            def echo() -> int:
                send_binary(data)
                if len(recv()) != MiB:
                    raise AssertionError("1 MiB echo came back with another length")
                return 1

            return timed_loop(duration, echo)  # one MiB per echo: the rate is in MiB/s
        raise ValueError(f"unknown scenario {scenario!r}")
    finally:
        client.close()


def peak_resident_bytes() -> int | None:
    """The process's peak resident set size so far (VmHWM), where /proc has it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def one_big_message(name: str, port: int) -> dict[str, float]:
    """Echo one 64 MiB message: its rate, and the client's peak memory growth.

    The growth is measured beyond the message the client sends (allocated
    before the baseline), as a multiple of the message size: VmHWM where the
    platform has it, tracemalloc's peak (Python allocations only) elsewhere.
    """
    data = os.urandom(BIG_MESSAGE)
    client = open_client(name, port)
    gc.collect()
    base = peak_resident_bytes()
    if base is None:
        tracemalloc.start()
    cpu_start = time.process_time()
    start = time.perf_counter()
    client.send_binary(data)
    received = client.recv()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    if base is None:
        growth = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        growth = (peak_resident_bytes() or base) - base
    if received != data:
        raise AssertionError("the 64 MiB message came back different")
    client.close()
    return {
        "rate": BIG_MESSAGE / MiB / elapsed,
        "cpu_us": 1e6 * cpu,
        "memory": growth / BIG_MESSAGE,
    }


def child_main(args: argparse.Namespace) -> None:
    if args.scenario == "msg64m":
        result = one_big_message(args.child, args.port)
    else:
        result = run_scenario(args.child, args.scenario, args.port, args.duration)
    print(json.dumps(result))


# -- the harness -----------------------------------------------------------------


def pin_to_one_cpu(cpu: int) -> str:
    """Pin this process (and so every child it starts) to one CPU; say what happened."""
    setaffinity = getattr(os, "sched_setaffinity", None)
    getaffinity = getattr(os, "sched_getaffinity", None)
    if setaffinity is None or getaffinity is None:
        print(
            "warning: os.sched_setaffinity is not available here: server and clients are "
            "NOT pinned, so ratios include the parallelism of the cores",
            file=sys.stderr,
        )
        return "not pinned (no os.sched_setaffinity on this platform)"
    allowed = getaffinity(0)
    if cpu not in allowed:
        print(f"warning: CPU {cpu} is not available; using CPU {min(allowed)}", file=sys.stderr)
        cpu = min(allowed)
    try:
        setaffinity(0, {cpu})
    except OSError as error:
        print(f"warning: could not pin to CPU {cpu} ({error}): not pinned", file=sys.stderr)
        return f"not pinned ({error})"
    return f"CPU {cpu} (server and every client, os.sched_setaffinity)"


def raise_fd_limit(needed: int) -> str:
    """Raise the soft RLIMIT_NOFILE (inherited by the echo server); describe the limit."""
    try:
        import resource
    except ImportError:
        return "no RLIMIT_NOFILE on this platform"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)


def start_server(choice: str) -> tuple[subprocess.Popen[str], int, str]:
    """Start the echo server (``choice``: auto, node or websockets): process, port, label."""
    node = shutil.which("node")
    ws_package = os.path.join(HERE, "node_modules", "ws", "package.json")
    node_ready = node is not None and os.path.exists(ws_package)
    if choice == "node" and not node_ready:
        raise SystemExit("--server node: needs node and `npm install` in benchmarks/")
    if node and node_ready and choice != "websockets":
        with open(ws_package) as package:
            version = json.load(package).get("version", "?")
        native = os.path.isdir(os.path.join(HERE, "node_modules", "bufferutil"))
        command = [node, os.path.join(HERE, "echo_server.js")]
        label = f"Node ws {version} ({'bufferutil' if native else 'no bufferutil'})"
    else:
        command = [sys.executable, os.path.join(HERE, "echo_server.py")]
        label = "websockets asyncio server"
        if choice == "auto":
            label += " (Node ws not installed: npm install in benchmarks/)"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        process.wait()
        raise RuntimeError(f"echo server did not start: {line!r}")
    return process, int(line.split()[1]), label


def source_revision() -> str:
    """The git commit of the checkout the benchmark runs from, when it is one."""
    try:
        output = subprocess.run(
            ["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return output.stdout.strip() or "unknown"


def describe_process(pid: int) -> str:
    """The CPUs and descriptor limit of a running process, where the platform tells."""
    parts = []
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            parts.append("CPUs " + ",".join(str(cpu) for cpu in sorted(getaffinity(pid))))
        except OSError:
            pass
    try:
        with open(f"/proc/{pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    parts.append(f"fd limit {line.split()[3]}")
    except OSError:
        pass
    return ", ".join(parts) or "no process details on this platform"


def run_child(command: list[str], label: str) -> dict[str, Any]:
    output = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if output.stderr.strip():
        print(f"[{label}] {output.stderr.strip()[-2000:]}", file=sys.stderr)
    if output.returncode != 0:
        print(f"[{label}] failed with exit code {output.returncode}", file=sys.stderr)
        return {}
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def client_command(client: str, scenario: str, port: int, duration: float) -> list[str]:
    command = [sys.executable, os.path.abspath(__file__), "--child", client]
    return [*command, "--scenario", scenario, "--port", str(port), "--duration", str(duration)]


def supported(client: str, scenario: str) -> bool:
    return not (client == "websocket-client" and scenario == "deflate4k")


def format_rate(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def format_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per client (default 5)")
    parser.add_argument(
        "--duration", type=float, default=1.0, help="seconds per timed scenario (default 1.0)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1 round, short scenarios, small idle"
    )
    parser.add_argument(
        "--idle",
        type=int,
        default=None,
        metavar="N",
        help="idle requests_ws connections to measure (default 1000, 50 with --quick; 0: skip)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=None,
        help="the idle window in seconds (default 10, 2 with --quick)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    parser.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help=f"comma-separated subset of: {', '.join(CLIENTS)}",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(s.key for s in SCENARIOS),
        help="comma-separated subset of: " + ", ".join(s.key for s in SCENARIOS) + " ('' for none)",
    )
    parser.add_argument(
        "--server",
        choices=["auto", "node", "websockets"],
        default="auto",
        help="the echo server: Node ws when installed (auto), or websockets' asyncio server",
    )
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin to (default 0)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if args.quick:
        args.rounds, args.duration = 1, 0.2
    idle = args.idle if args.idle is not None else (50 if args.quick else 1000)
    idle_seconds = args.idle_seconds or (2.0 if args.quick else 10.0)
    clients = [name.strip() for name in args.clients.split(",") if name.strip()]
    unknown = [name for name in clients if name not in CLIENTS]
    if unknown or not clients:
        parser.error(f"--clients: unknown client(s) {unknown}; choose from {list(CLIENTS)}")
    chosen = {key.strip() for key in args.scenarios.split(",") if key.strip()}
    unknown = sorted(chosen - set(TITLES))
    if unknown:
        parser.error(f"--scenarios: unknown scenario(s) {unknown}; choose from {list(TITLES)}")
    scenarios = [scenario for scenario in SCENARIOS if scenario.key in chosen]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if idle < 0:
        parser.error("--idle must be 0 (skip) or more")
    if args.idle_seconds is not None and args.idle_seconds <= 0:
        parser.error("--idle-seconds must be positive")
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(directory):
            parser.error(f"--json: no directory {directory}")

    import requests_ws
    import requests_ws.masking

    pinned = pin_to_one_cpu(args.cpu)
    fd_limit = raise_fd_limit(idle * 2 + 256)
    started = time.time()
    server, port, label = start_server(args.server)
    try:
        server_details = describe_process(server.pid)
        # samples[client][scenario][round]: that round's result, {} when it failed.
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            c: {s.key: [] for s in SCENARIOS} for c in clients
        }
        for round_number in range(args.rounds):
            for scenario in scenarios:
                shift = round_number % len(clients)
                for client in clients[shift:] + clients[:shift]:
                    result: dict[str, Any] = {}
                    if supported(client, scenario.key):
                        command = client_command(client, scenario.key, port, args.duration)
                        result = run_child(command, f"{CLIENTS[client]}, {scenario.title}")
                    samples[client][scenario.key].append(result)
        idle_result: dict[str, Any] = {}
        if idle:
            command = [sys.executable, os.path.join(HERE, "idle_cost.py"), "--port", str(port)]
            command += ["--connections", str(idle), "--seconds", str(idle_seconds)]
            idle_result = run_child(command, "idle")
    finally:
        server.terminate()
        server.wait(10)
    elapsed = time.time() - started

    def median(client: str, key: str, field: str = "rate") -> float | None:
        rounds = samples.get(client, {}).get(key, [])
        values = [sample[field] for sample in rounds if field in sample]
        return statistics.median(values) if values else None

    def ratio(client: str, reference: str, key: str, by_cpu: bool = False) -> float | None:
        """The median over rounds of the two clients' rates in the same round.

        ``by_cpu``: the ratio of their client CPU time per operation instead
        (reference's over client's, so that higher is better here too).
        """
        ours = samples.get(client, {}).get(key, [])
        theirs = samples.get(reference, {}).get(key, [])  # empty when not selected
        field = "cpu_us" if by_cpu else "rate"
        values = []
        for a, b in zip(ours, theirs, strict=False):
            if a.get(field) and b.get(field):
                values.append(b[field] / a[field] if by_cpu else a[field] / b[field])
        return statistics.median(values) if values else None

    print(f"echo server: {label}; {server_details}")
    print(f"pinned: {pinned}")
    print(
        f"requests_ws {requests_ws.__version__} (commit {source_revision()}), masking: "
        f"{'C accelerator' if requests_ws.masking.ACCELERATED else 'pure Python'}; "
        f"Python {sys.version.split()[0]}; {os.cpu_count()} cores on the machine"
    )
    print(
        f"{args.rounds} round(s) x {args.duration:g} s per scenario, medians; "
        f"{elapsed:.0f} s in all. Other work on the machine shares the CPU: numbers are noisy."
    )
    names = [CLIENTS[c] for c in clients]

    if scenarios:
        print("\nRates (higher is better)\n")
        rows = []
        for scenario in scenarios:
            cells = [format_rate(median(c, scenario.key)) for c in clients]
            rows.append([scenario.title, scenario.unit, *cells])
        print(markdown_table(["scenario", "unit", *names], rows))

        print("\nRatios to the raw socket / to the minimal client (medians of same-round ratios)\n")
        rows = []
        for scenario in scenarios:
            cells = []
            for client in clients:
                to_raw = format_ratio(ratio(client, "raw", scenario.key))
                to_minimal = format_ratio(ratio(client, "minimal", scenario.key))
                cells.append(f"{to_raw} / {to_minimal}")
            rows.append([scenario.title, *cells])
        print(markdown_table(["scenario", *names], rows))

        print("\nClient CPU per operation, µs (per message, per MiB echoed, per connection)\n")
        rows = []
        for scenario in scenarios:
            cells = []
            for client in clients:
                value = median(client, scenario.key, "cpu_us")
                if value is not None and scenario.key == "msg64m":
                    value /= BIG_MESSAGE / MiB  # per MiB, like the 1 MiB echo
                cells.append("n/a" if value is None else f"{value:,.1f}")
            rows.append([scenario.title, *cells])
        print(markdown_table(["scenario", *names], rows))

    memory = {c: median(c, "msg64m", "memory") for c in clients}
    if "msg64m" in chosen:
        print("\nPeak memory growth of the client, one 64 MiB message (x the message)\n")
        cells = ["n/a" if memory[c] is None else f"{memory[c]:.3f}x" for c in clients]
        print(markdown_table(names, [cells]))

    print("\nIssue 8's targets for requests_ws\n")
    verdicts: list[dict[str, Any]] = []
    rows = []

    def verdict(
        text: str, measured: float | None, shown: str, met: bool | None, by_cpu: str = ""
    ) -> None:
        mark = "n/a" if met is None else ("met" if met else "MISSED")
        verdicts.append({"target": text, "measured": measured, "met": met})
        rows.append([text, shown, mark, by_cpu])

    for target in [t for t in TARGETS if t.scenario in chosen]:
        measured = ratio("requests_ws", target.reference, target.scenario)
        text = f"{TITLES[target.scenario]} >= {target.ratio:.2f} x {CLIENTS[target.reference]}"
        by_cpu = ratio("requests_ws", target.reference, target.scenario, by_cpu=True)
        cpu_cell = "n/a" if by_cpu is None else f"{by_cpu:.3f} x"
        if measured is None:
            verdict(text, None, "n/a", None, cpu_cell)
            continue
        verdict(text, measured, f"{measured:.3f} x", measured >= target.ratio, cpu_cell)
    peak = memory.get("requests_ws")
    if "msg64m" in chosen:
        verdict(
            f"peak memory, one 64 MiB message <= {MAX_PEAK_MEMORY:g} x the message",
            peak,
            "n/a" if peak is None else f"{peak:.3f} x",
            None if peak is None else peak <= MAX_PEAK_MEMORY,
        )
    if idle_result:
        count = idle_result["connections"]
        cpu = idle_result["cpu_percent_of_one_core"]
        verdict(
            f"{count:,} idle connections < {MAX_IDLE_CPU_PERCENT:g} % of one core",
            cpu,
            f"{cpu:.2f} %",
            cpu < MAX_IDLE_CPU_PERCENT,
        )
        rss = idle_result["rss_kib_per_connection"]
        verdict(
            f"{count:,} idle connections < {MAX_IDLE_RSS_KIB:g} KiB RSS each",
            rss,
            "n/a" if rss is None else f"{rss:.1f} KiB",
            None if rss is None else rss < MAX_IDLE_RSS_KIB,
        )
    print(markdown_table(["target", "measured", "result", "same ratio by client CPU/op"], rows))
    if idle_result:
        print(
            f"\nidle: {idle_result['connections']:,} connections (default settings, keepalive "
            f"on), {idle_result['still_open']:,} still open after "
            f"{idle_result['window_seconds']:.1f} s, {idle_result['threads']:,} threads in the "
            f"process, opened in {idle_result['open_seconds']:.1f} s"
        )

    if args.json:
        report = {
            "unit": "operations per second, higher is better (each row's unit says which)",
            "server": label,
            "pinned": pinned,
            "server_fd_limit": fd_limit,
            "commit": source_revision(),
            "rounds": args.rounds,
            "duration": args.duration,
            "rows": [
                {
                    "scenario": scenario.title,
                    "unit": scenario.unit,
                    "results": {CLIENTS[c]: median(c, scenario.key) for c in clients},
                    "client_cpu_us": {
                        CLIENTS[c]: median(c, scenario.key, "cpu_us") for c in clients
                    },
                }
                for scenario in scenarios
            ],
            "peak_memory_x_message": {CLIENTS[c]: memory[c] for c in clients},
            "targets": verdicts,
            "idle": idle_result or None,
        }
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
