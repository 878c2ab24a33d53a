"""benchmarks/chart.py turns bench_clients.py's JSON into a PNG."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "benchmarks" / "chart.py"

try:
    import matplotlib  # noqa: F401
except ImportError:  # in the test extra; only a bare checkout without it skips
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("matplotlib is not installed", allow_module_level=True)

SAMPLE = {
    "unit": "messages per second (higher is better)",
    "rows": [
        {
            "scenario": "16 B round trip",
            "results": {
                "requests_ws": 51234.0,
                "websockets.sync": 30000.0,
                "websocket-client": 41000.0,
                "raw socket": 60000.0,
                "minimal client": 65000.0,
            },
        },
        {
            "scenario": "deflate",
            "results": {"requests_ws": 900.0, "websocket-client": None, "raw socket": 1000.0},
        },
        {"scenario": "no baseline", "results": {"requests_ws": 5.0}},
    ],
}


def run_chart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHART), *args], capture_output=True, text=True, timeout=120
    )


def test_chart_writes_a_png(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "results.json"
    source.write_text(json.dumps(SAMPLE))
    output = tmp_path / "chart.png"
    result = run_chart(str(source), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert output.stat().st_size > 10_000


def test_ratios_skip_missing_results_and_scenarios_without_baseline() -> None:
    sys.path.insert(0, str(CHART.parent))
    try:
        import chart
    finally:
        sys.path.remove(str(CHART.parent))
    scenarios, values = chart.ratios(SAMPLE)
    assert scenarios == ["16 B round trip", "deflate"]
    assert values["requests_ws"] == [pytest.approx(51234 / 60000), pytest.approx(0.9)]
    assert values["websockets.sync"][0] == pytest.approx(0.5)
    assert values["websocket-client"][1] != values["websocket-client"][1]  # NaN: no bar


def test_bad_input_is_an_error(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "results.json"
    source.write_text(json.dumps({"rows": [{"scenario": "x", "results": {}}]}))
    result = run_chart(str(source), "-o", str(tmp_path / "chart.png"))
    assert result.returncode == 2 and "error: no scenario has a 'raw socket'" in result.stderr
    assert not (tmp_path / "chart.png").exists()


def test_shipped_results_are_charted_in_the_readme() -> None:
    data = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    assert {row["scenario"] for row in data["rows"]} and (
        ROOT / "benchmarks" / "chart.png"
    ).exists()
    assert "benchmarks/chart.png" in (ROOT / "README.md").read_text()
