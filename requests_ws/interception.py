"""TLS-intercepting proxies: name the issuer of the certificate a proxy
presented in the server's place, and say what to do about it.

Corporate proxies that inspect TLS present certificates signed by the
company's own CA; verification then fails with "unable to get local issuer
certificate". :func:`certificate_issuer` reads the issuer's distinguished name
from a DER certificate (a small ASN.1 walk: the standard library has no
parser for certificates it could not verify); :func:`hint` builds the
sentence that goes into the ``SSLError``.
"""

from __future__ import annotations

__all__ = ["certificate_issuer", "hint"]

_ATTRIBUTES = {
    bytes.fromhex("550403"): "CN",
    bytes.fromhex("55040a"): "O",
    bytes.fromhex("55040b"): "OU",
    bytes.fromhex("550406"): "C",
}
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


def _element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``offset``."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, offset, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        element = _element(data, start)
        found.append(element)
        start = element[2]
    return found


def certificate_issuer(der: bytes) -> str | None:
    """The issuer of a DER certificate as ``"CN=..., O=..."``, or None."""
    try:
        _, start, end = _element(der, 0)  # Certificate
        _, start, end = _children(der, start, end)[0]  # TBSCertificate
        fields = _children(der, start, end)
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        _, start, end = fields[2]  # serialNumber, signature, issuer
        parts = []
        for _, set_start, set_end in _children(der, start, end):
            for _, pair_start, pair_end in _children(der, set_start, set_end):
                (_, oid_start, oid_end), (tag, value_start, value_end) = _children(
                    der, pair_start, pair_end
                )[:2]
                name = _ATTRIBUTES.get(der[oid_start:oid_end])
                encoding = _STRING_TAGS.get(tag)
                if name and encoding:
                    value = der[value_start:value_end].decode(encoding, "replace")
                    parts.append(f"{name}={value}")
    except (IndexError, ValueError):
        return None
    return ", ".join(parts) or None


def hint(issuer: str | None, proxy_url: str) -> str:
    """The advice appended to a certificate failure through ``proxy_url``."""
    issued = f"the certificate was issued by {issuer!r}; " if issuer else ""
    return (
        f"{issued}the proxy {proxy_url} may be intercepting TLS: pass verify= (or set "
        "REQUESTS_CA_BUNDLE) with the proxy's CA certificate (your company's root CA)"
    )
