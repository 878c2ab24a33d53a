"""The code-quality gates run with the tests: mypy --strict and ruff."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_mypy_strict() -> None:
    result = _run("mypy", "--strict", "requests_ws")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check() -> None:
    result = _run("ruff", "check", "requests_ws", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", "requests_ws", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_py_typed_ships() -> None:
    assert (ROOT / "requests_ws" / "py.typed").exists()
