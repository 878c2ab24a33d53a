"""Draw the benchmark's results as a chart: each client's speed as a ratio to
the raw-socket client, per scenario, as grouped bars.

Reads the JSON that ``bench_clients.py --json PATH`` writes::

    {"unit": "messages per second (higher is better)",
     "rows": [{"scenario": "16 B round trip",
               "results": {"requests_ws": 51234.0, "websockets.sync": 30000.0,
                           "websocket-client": 41000.0, "raw socket": 60000.0}}]}

A result that is missing or null is left out (no bar); a scenario without a
raw-socket result is skipped.

Run: python benchmarks/chart.py results.json   (writes benchmarks/chart.png;
needs matplotlib: pip install '.[bench]')
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
from typing import Any

CLIENTS = ("requests_ws", "websockets.sync", "websocket-client")
BASELINE = "raw socket"
COLORS = {"requests_ws": "#2b6cb0", "websockets.sync": "#9c6ade", "websocket-client": "#dd8452"}
DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parent / "chart.png"


def ratios(data: dict[str, Any]) -> tuple[list[str], dict[str, list[float]]]:
    """Scenarios and, per client, its ratio to the raw socket (NaN: no result)."""
    if not isinstance(data.get("rows"), list):
        raise ValueError("the JSON must have a 'rows' list")
    scenarios: list[str] = []
    values: dict[str, list[float]] = {client: [] for client in CLIENTS}
    for row in data["rows"]:
        results = row.get("results") or {}
        baseline = results.get(BASELINE)
        if not baseline:
            continue
        scenarios.append(str(row.get("scenario", "?")))
        for client in CLIENTS:
            value = results.get(client)
            values[client].append(float(value) / float(baseline) if value else math.nan)
    if not scenarios:
        raise ValueError(f"no scenario has a {BASELINE!r} result to compare with")
    return scenarios, values


def draw(data: dict[str, Any], output: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios, values = ratios(data)
    width = 0.8 / len(CLIENTS)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(scenarios) + 2), 4.5))
    for index, client in enumerate(CLIENTS):
        positions = [s + (index - (len(CLIENTS) - 1) / 2) * width for s in range(len(scenarios))]
        bars = axes.bar(positions, values[client], width, label=client, color=COLORS[client])
        for bar, value in zip(bars, values[client], strict=True):
            if not math.isnan(value):
                axes.annotate(
                    f"{value:.2f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    axes.axhline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(scenarios)), scenarios, rotation=20, ha="right", fontsize=8)
    axes.set_ylabel(f"ratio to {BASELINE} (higher is better)")
    axes.set_title("Speed relative to a raw-socket client (higher is better)", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=pathlib.Path, help="the file bench_clients.py --json wrote")
    parser.add_argument(
        "-o", "--output", type=pathlib.Path, default=DEFAULT_OUTPUT, help="PNG to write"
    )
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.json.read_text())
        draw(data, args.output)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
