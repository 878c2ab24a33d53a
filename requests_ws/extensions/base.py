"""The extension interface of RFC 6455 section 9: what an extension and its
client-side factory must provide to plug into the protocol and handshake."""

from __future__ import annotations

from collections.abc import Sequence

from ..frames import Frame

__all__ = ["Extension", "ClientExtensionFactory", "ExtensionParameter"]

ExtensionParameter = tuple[str, str | None]


class Extension:
    """A negotiated extension, applied to every data frame in both directions."""

    name: str

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decode a received data frame (TEXT, BINARY or CONT).

        ``max_size`` is how many more bytes the current message may grow by
        (``None``: unlimited); exceeding it raises :class:`PayloadTooBig`.
        Clear the reserved bit the extension consumed.
        """
        raise NotImplementedError

    def encode(self, frame: Frame) -> Frame:
        """Encode a data frame about to be sent."""
        raise NotImplementedError


class ClientExtensionFactory:
    """Offers an extension in the handshake and builds it from the answer."""

    name: str

    def get_request_params(self) -> list[ExtensionParameter]:
        """The parameters of the offer, as (name, value or None) pairs."""
        raise NotImplementedError

    def process_response_params(
        self,
        params: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        """Check the server's answer and return the extension to use.

        Raises :class:`NegotiationError` when the answer cannot be accepted.
        """
        raise NotImplementedError
