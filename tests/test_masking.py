"""Masking: both implementations against the RFC example and a reference."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from requests_ws import masking

IMPLEMENTATIONS: list[Callable[[bytes | bytearray | memoryview, bytes], bytes]] = [
    masking.apply_mask_python
]
if masking.apply_mask_c is not None:
    IMPLEMENTATIONS.append(masking.apply_mask_c)


def reference(data: bytes, mask: bytes) -> bytes:
    return bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda f: f.__module__)
def apply_mask(
    request: pytest.FixtureRequest,
) -> Callable[[bytes | bytearray | memoryview, bytes], bytes]:
    implementation: Callable[[bytes | bytearray | memoryview, bytes], bytes] = request.param
    return implementation


def test_rfc_6455_example(apply_mask: Callable[..., bytes]) -> None:
    # RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
    assert apply_mask(b"Hello", bytes.fromhex("37fa213d")) == bytes.fromhex("7f9f4d5158")


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 7, 8, 9, 127, 128, 129, 1000, 65536, 2**20 + 3])
def test_sizes(apply_mask: Callable[..., bytes], size: int) -> None:
    data = os.urandom(size)
    mask = os.urandom(4)
    assert apply_mask(data, mask) == reference(data, mask)


def test_input_types(apply_mask: Callable[..., bytes]) -> None:
    data = os.urandom(300)
    mask = os.urandom(4)
    expected = reference(data, mask)
    assert apply_mask(bytearray(data), mask) == expected
    assert apply_mask(memoryview(data), mask) == expected
    assert apply_mask(memoryview(b"xx" + data)[2:], mask) == expected
    assert type(apply_mask(bytearray(data), mask)) is bytes


@pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
def test_mask_must_have_four_bytes(apply_mask: Callable[..., bytes], mask: bytes) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        apply_mask(b"data", mask)


@given(st.binary(max_size=600), st.binary(min_size=4, max_size=4))
def test_matches_reference(data: bytes, mask: bytes) -> None:
    for implementation in IMPLEMENTATIONS:
        assert implementation(data, mask) == reference(data, mask)


def test_accelerator_is_active_when_required() -> None:
    """CI builds the extension: a missing build must fail there, not pass silently."""
    required = os.environ.get("REQUESTS_WS_REQUIRE_SPEEDUPS") == "1" or (
        os.environ.get("CI", "").lower() == "true"
        and os.environ.get("REQUESTS_WS_NO_SPEEDUPS") != "1"
    )
    if required:
        assert masking.ACCELERATED
        assert masking.apply_mask is masking.apply_mask_c


def test_fallback_runs_the_same_tests() -> None:
    """The suite of the sans-I/O core passes with the pure-Python masking too."""
    env = dict(os.environ, REQUESTS_WS_NO_SPEEDUPS="1")
    env.pop("REQUESTS_WS_REQUIRE_SPEEDUPS", None)
    code = (
        "import requests_ws.masking as m, sys; "
        "sys.exit(0 if not m.ACCELERATED and m.apply_mask is m.apply_mask_python else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_masking.py",
            "tests/test_frames.py",
            "tests/test_protocol.py",
            "tests/test_hot_path.py",
            "-k",
            "not fallback",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
