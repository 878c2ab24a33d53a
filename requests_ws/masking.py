"""Client masking (RFC 6455 section 5.3): XOR a payload with a 4-byte key.

Two implementations with one contract: an optional C accelerator
(``requests_ws._speedups``, built at install time when a compiler is there)
and a pure-Python fallback. The fallback XORs small payloads as one big
integer and large ones with four strided ``bytes.translate`` passes, one
256-byte table per key byte. ``ACCELERATED`` tells which one is active;
``REQUESTS_WS_NO_SPEEDUPS=1`` forces the fallback.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["apply_mask", "apply_mask_python", "apply_mask_c", "ACCELERATED"]

# _XOR_TABLES[k] maps every byte b to b ^ k.
_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]
_SMALL = 128


def apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """Return ``data`` XOR-ed with the repeated 4-byte ``mask`` (pure Python)."""
    if len(mask) != 4:
        raise ValueError(f"mask must contain 4 bytes, got {len(mask)}")
    size = len(data)
    if size <= _SMALL:
        if size == 0:
            return b""
        key = int.from_bytes(mask * (size // 4 + 1), "little") & ((1 << (8 * size)) - 1)
        return (int.from_bytes(data, "little") ^ key).to_bytes(size, "little")
    source = bytes(data)
    out = bytearray(size)
    tables = _XOR_TABLES
    out[0::4] = source[0::4].translate(tables[mask[0]])
    out[1::4] = source[1::4].translate(tables[mask[1]])
    out[2::4] = source[2::4].translate(tables[mask[2]])
    out[3::4] = source[3::4].translate(tables[mask[3]])
    return bytes(out)


apply_mask_c: Callable[[bytes | bytearray | memoryview, bytes], bytes] | None
try:
    from ._speedups import apply_mask as apply_mask_c
except ImportError:  # no compiler at install time: the fallback is tested too
    apply_mask_c = None

ACCELERATED = apply_mask_c is not None and os.environ.get("REQUESTS_WS_NO_SPEEDUPS") != "1"

apply_mask: Callable[[bytes | bytearray | memoryview, bytes], bytes]
apply_mask = apply_mask_c if ACCELERATED and apply_mask_c is not None else apply_mask_python
