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

__all__ = ["PerMessageDeflate", "ClientPerMessageDeflateFactory"]

_TAIL = b"\x00\x00\xff\xff"
_NAME = "permessage-deflate"
# zlib cannot compress raw deflate with a 256-byte window (windowBits 8 is
# rejected), and decompressing with the largest window accepts every
# compressor's output.
_DECOMPRESS_WBITS = -15


class PerMessageDeflate(Extension):
    """The negotiated permessage-deflate codec of one connection.

    ``remote_*`` describe how the server compresses, ``local_*`` how the
    client does. When the client may only use an 8-bit window, which zlib
    cannot produce, the client sends its messages uncompressed (RFC 7692
    lets any message go uncompressed).
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
        self.compress_settings = dict(compress_settings or {})
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
        if opcode == OP_CONT:
            if frame.rsv1:
                raise ProtocolError(
                    "the server set RSV1 on a continuation frame "
                    "(permessage-deflate sets it on the first frame only)"
                )
            if not self._decoding:
                return frame
        elif opcode == OP_TEXT or opcode == OP_BINARY:
            if not frame.rsv1:
                self._decoding = False
                return frame
            self._decoding = True
            if self._decoder is None or self.remote_no_context_takeover:
                self._decoder = zlib.decompressobj(wbits=_DECOMPRESS_WBITS)
        else:
            return frame
        data = frame.data
        if frame.fin:
            data += _TAIL
            self._decoding = False
        limit = 0 if max_size is None else max_size + 1
        try:
            inflated = self._decoder.decompress(data, limit)
        except zlib.error as exc:
            raise ProtocolError(f"the server sent invalid compressed data: {exc}") from exc
        if max_size is not None and (len(inflated) > max_size or self._decoder.unconsumed_tail):
            raise PayloadTooBig(None, max_size)
        return Frame(opcode, inflated, frame.fin, False, frame.rsv2, frame.rsv3)

    def encode(self, frame: Frame) -> Frame:
        """Deflate a data frame about to be sent."""
        opcode = frame.opcode
        if opcode == OP_TEXT or opcode == OP_BINARY:
            if not self._compress:
                return frame
            self._encoding = True
            if self._encoder is None or self.local_no_context_takeover:
                self._encoder = zlib.compressobj(
                    wbits=-self.local_max_window_bits, **self.compress_settings
                )
            rsv1 = True
        elif opcode == OP_CONT:
            if not self._encoding:
                return frame
            rsv1 = False
        else:
            return frame
        encoder = self._encoder
        data = encoder.compress(frame.data) + encoder.flush(zlib.Z_SYNC_FLUSH)
        if frame.fin:
            self._encoding = False
            if data.endswith(_TAIL):
                data = data[:-4]
        return Frame(opcode, data, frame.fin, rsv1, frame.rsv2, frame.rsv3)


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
    ``wbits``); the default is zlib's own (level 6, memLevel 8).
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
