"""Client masking (RFC 6455 section 5.3): XOR a payload with a 4-byte key.

PLACEHOLDER: the fast pure-Python path and the optional C accelerator are
being written; this simple version keeps the package importable meanwhile.
"""

from __future__ import annotations

__all__ = ["apply_mask", "ACCELERATED"]

ACCELERATED = False


def apply_mask(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """Return ``data`` XOR-ed with the repeated 4-byte ``mask``."""
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    n = len(data)
    if n == 0:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")
