"""permessage-deflate (RFC 7692): the client's offer, the strict check of the
server's answer, and the per-message codec.

Decompression is bounded: it never produces more than the bytes a message
may still grow by, so a small frame that would inflate to gigabytes fails
with :class:`PayloadTooBig` after allocating about ``max_size``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
)
from ..frames import OP_BINARY, OP_CONT, OP_TEXT, Frame
from .base import ClientExtensionFactory, Extension, ExtensionParameter

__all__ = ["PerMessageDeflate", "ClientPerMessageDeflateFactory", "DEFAULT_COMPRESS_SETTINGS"]

_TAIL = b"\x00\x00\xff\xff"
_NAME = "permessage-deflate"
# zlib cannot compress raw deflate with a 256-byte window (windowBits 8 is
# rejected), and decompressing with the largest window accepts every
# compressor's output.
_DECOMPRESS_WBITS = -15
# Payloads below this size get the 4-byte tail appended (one small copy);
# larger ones are inflated in two calls, so that they are never copied.
_JOIN_TAIL_BELOW = 8192

#: What the client's compressor uses unless ``compress_settings`` says
#: otherwise: zlib level 3 and memLevel 5 (zlib's own defaults are 6 and 8).
#: Measured on 4 KiB JSON messages (README, "Compression settings"): about
#: half the CPU of level 6 for output about 15 % larger on distinct messages
#: (the same size on repeated ones), and 144 KiB of compressor state per
#: connection instead of 256 KiB.
DEFAULT_COMPRESS_SETTINGS: Mapping[str, int] = {"level": 3, "memLevel": 5}

_RSV1 = 0x40


class PerMessageDeflate(Extension):
    """The negotiated permessage-deflate codec of one connection.

    ``remote_*`` describe how the server compresses, ``local_*`` how the
    client does. When the client may only use an 8-bit window, which zlib
    cannot produce, the client sends its messages uncompressed (RFC 7692
    lets any message go uncompressed). ``compress_settings`` go to
    :func:`zlib.compressobj` over :data:`DEFAULT_COMPRESS_SETTINGS`.

    :meth:`encode_payload` and :meth:`decode_payload` are the codec itself, on
    a frame's parts (the protocol calls them directly, without a
    :class:`Frame` per frame); :meth:`encode` and :meth:`decode` wrap them in
    the :class:`Extension` interface.
    """

    name = _NAME

    def __init__(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_settings = {**DEFAULT_COMPRESS_SETTINGS, **(compress_settings or {})}
        self._compress = local_max_window_bits >= 9
        self._decoder: Any = None
        self._encoder: Any = None
        self._decoding = False  # inside a compressed message being received
        self._encoding = False  # inside a message being sent

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_max_window_bits={self.remote_max_window_bits}, "
            f"local_max_window_bits={self.local_max_window_bits})"
        )

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Inflate a received data frame of a compressed message."""
        opcode = frame.opcode
        if opcode != OP_TEXT and opcode != OP_BINARY and opcode != OP_CONT:
            return frame
        if not frame.rsv1 and (opcode != OP_CONT or not self._decoding):
            # Uncompressed: only the message state changes.
            self.decode_payload(opcode, frame.data, frame.fin, False, max_size)
            return frame
        data = self.decode_payload(opcode, frame.data, frame.fin, frame.rsv1, max_size)
        return Frame(opcode, data, frame.fin, False, frame.rsv2, frame.rsv3)

    def decode_payload(
        self, opcode: int, data: bytes, fin: bool, rsv1: bool, max_size: int | None
    ) -> bytes:
        """Inflate the payload of a received data frame (TEXT, BINARY or CONT)
        with RSV1 as given; return it as is when its message is uncompressed.

        ``max_size`` is how many more bytes the message may grow by (``None``:
        unlimited): inflation stops one byte past it and raises
        :class:`PayloadTooBig`, so memory stays about ``max_size``.
        """
        if opcode == OP_CONT:
            if rsv1:
                raise ProtocolError(
                    "the server set RSV1 on a continuation frame "
                    "(permessage-deflate sets it on the first frame only)"
                )
            if not self._decoding:
                return data
            decoder = self._decoder
        else:
            if not rsv1:
                self._decoding = False
                return data
            self._decoding = True
            decoder = self._decoder
            if decoder is None or self.remote_no_context_takeover:
                decoder = self._decoder = zlib.decompressobj(wbits=_DECOMPRESS_WBITS)
        limit = 0 if max_size is None else max_size + 1
        tail = False
        if fin:
            self._decoding = False
            if len(data) < _JOIN_TAIL_BELOW:
                data += _TAIL
            else:
                tail = True
        try:
            inflated: bytes = decoder.decompress(data, limit)
            if max_size is not None and (len(inflated) > max_size or decoder.unconsumed_tail):
                raise PayloadTooBig(None, max_size)
            if tail:
                # The tail ends an empty stored block: it inflates to nothing.
                inflated += decoder.decompress(_TAIL, limit - len(inflated) if limit else 0)
        except zlib.error as exc:
            raise ProtocolError(f"the server sent invalid compressed data: {exc}") from exc
        return inflated

    def encode(self, frame: Frame) -> Frame:
        """Deflate a data frame about to be sent."""
        opcode = frame.opcode
        if opcode != OP_TEXT and opcode != OP_BINARY and opcode != OP_CONT:
            return frame
        data, rsv = self.encode_payload(opcode, frame.data, frame.fin)
        if data is frame.data:
            return frame
        return Frame(opcode, bytes(data), frame.fin, bool(rsv & _RSV1), frame.rsv2, frame.rsv3)

    def encode_payload(
        self, opcode: int, data: bytes | bytearray | memoryview, fin: bool
    ) -> tuple[bytes | bytearray | memoryview, int]:
        """Deflate the payload of a data frame (TEXT, BINARY or CONT) about to
        be sent; return it with the reserved bits to set (RSV1, or none when
        the message goes uncompressed)."""
        if opcode == OP_CONT:
            if not self._encoding:
                return data, 0
            rsv = 0
        else:
            if not self._compress:
                return data, 0
            self._encoding = True
            if self._encoder is None or self.local_no_context_takeover:
                self._encoder = zlib.compressobj(
                    wbits=-self.local_max_window_bits, **self.compress_settings
                )
            rsv = _RSV1
        encoder = self._encoder
        # compress() keeps small inputs in zlib's buffers and returns b"":
        # the join then costs nothing.
        compressed = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            self._encoding = False
            if compressed.endswith(_TAIL):
                compressed = compressed[:-4]
        return compressed, rsv


def _window_bits(name: str, value: str | None) -> int:
    if value is None or not value.isdigit() or (len(value) > 1 and value[0] == "0"):
        raise InvalidParameterValue(
            name, value, f"expected an integer from 8 to 15 in the server's {_NAME} answer"
        )
    bits = int(value)
    if not 8 <= bits <= 15:
        raise InvalidParameterValue(
            name, value, f"out of range (8-15) in the server's {_NAME} answer"
        )
    return bits


class ClientPerMessageDeflateFactory(ClientExtensionFactory):
    """Offers permessage-deflate with the RFC 7692 parameters.

    ``client_max_window_bits``: ``True`` offers the parameter without a value
    (the server may then limit the client's window), an int 8-15 caps it,
    ``None`` leaves it out. ``server_max_window_bits``: an int 8-15 asks the
    server to cap its window. The ``*_no_context_takeover`` flags ask for a
    fresh compression context per message. ``compress_settings`` goes to
    :func:`zlib.compressobj` (``level``, ``memLevel``, ``strategy``; not
    ``wbits``), over :data:`DEFAULT_COMPRESS_SETTINGS` (level 3, memLevel 5;
    zlib's own defaults are level 6, memLevel 8).
    """

    name = _NAME

    def __init__(
        self,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | bool | None = True,
        compress_settings: Mapping[str, Any] | None = None,
    ) -> None:
        if server_max_window_bits is not None and not (
            isinstance(server_max_window_bits, int) and 8 <= server_max_window_bits <= 15
        ):
            raise ValueError("server_max_window_bits must be None or an integer from 8 to 15")
        if client_max_window_bits is False or (
            client_max_window_bits is not None
            and client_max_window_bits is not True
            and not 8 <= client_max_window_bits <= 15
        ):
            raise ValueError("client_max_window_bits must be None, True or an integer from 8 to 15")
        if compress_settings is not None and "wbits" in compress_settings:
            raise ValueError(
                "compress_settings cannot set wbits: use client_max_window_bits instead"
            )
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.compress_settings = dict(compress_settings or {})

    def get_request_params(self) -> list[ExtensionParameter]:
        """The offer: the RFC 7692 parameters this factory was built with."""
        params: list[ExtensionParameter] = []
        if self.server_no_context_takeover:
            params.append(("server_no_context_takeover", None))
        if self.client_no_context_takeover:
            params.append(("client_no_context_takeover", None))
        if self.server_max_window_bits is not None:
            params.append(("server_max_window_bits", str(self.server_max_window_bits)))
        if self.client_max_window_bits is True:
            params.append(("client_max_window_bits", None))
        elif self.client_max_window_bits is not None:
            params.append(("client_max_window_bits", str(self.client_max_window_bits)))
        return params

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> PerMessageDeflate:
        """Check the server's answer to the offer and build the codec.

        Raises :class:`NegotiationError` for an unknown, repeated, malformed,
        out-of-range or un-offered parameter, for a missing parameter the
        client required, and when permessage-deflate was already accepted.
        """
        if any(extension.name == _NAME for extension in accepted_extensions):
            raise NegotiationError("the server accepted permessage-deflate twice")
        seen: set[str] = set()
        server_no_context_takeover = False
        client_no_context_takeover = False
        server_max_window_bits: int | None = None
        client_max_window_bits: int | None = None
        for name, value in params:
            if name in seen:
                raise DuplicateParameter(name, _NAME)
            seen.add(name)
            if name in ("server_no_context_takeover", "client_no_context_takeover"):
                if value is not None:
                    raise InvalidParameterValue(
                        name, value, f"{name} takes no value in the server's {_NAME} answer"
                    )
                if name == "server_no_context_takeover":
                    server_no_context_takeover = True
                else:
                    client_no_context_takeover = True
            elif name == "server_max_window_bits":
                server_max_window_bits = _window_bits(name, value)
                offered = self.server_max_window_bits
                if offered is not None and server_max_window_bits > offered:
                    raise NegotiationError(
                        f"the server answered server_max_window_bits={server_max_window_bits}"
                        f" but the client asked for at most {offered}"
                    )
            elif name == "client_max_window_bits":
                if self.client_max_window_bits is None:
                    raise NegotiationError(
                        "the server sent client_max_window_bits, which the client did not offer"
                    )
                client_max_window_bits = _window_bits(name, value)
                offered_bits = self.client_max_window_bits
                if offered_bits is not True and client_max_window_bits > offered_bits:
                    raise NegotiationError(
                        f"the server answered client_max_window_bits={client_max_window_bits}"
                        f" but the client offered at most {offered_bits}"
                    )
            else:
                raise InvalidParameterName(name, _NAME)
        if self.server_no_context_takeover and not server_no_context_takeover:
            raise NegotiationError(
                "the client asked for server_no_context_takeover but the server's answer "
                "does not include it"
            )
        if self.server_max_window_bits is not None and server_max_window_bits is None:
            raise NegotiationError(
                f"the client asked for server_max_window_bits={self.server_max_window_bits} "
                "but the server's answer does not include it"
            )
        if client_max_window_bits is None:
            if isinstance(self.client_max_window_bits, int) and not isinstance(
                self.client_max_window_bits, bool
            ):
                client_max_window_bits = self.client_max_window_bits
            else:
                client_max_window_bits = 15
        return PerMessageDeflate(
            remote_no_context_takeover=server_no_context_takeover,
            local_no_context_takeover=(
                client_no_context_takeover or self.client_no_context_takeover
            ),
            remote_max_window_bits=server_max_window_bits or 15,
            local_max_window_bits=client_max_window_bits,
            compress_settings=self.compress_settings,
        )
