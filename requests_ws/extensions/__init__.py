"""Extensions (RFC 6455 section 9): the interface and permessage-deflate.

Plug in another extension by subclassing :class:`ClientExtensionFactory` and
:class:`Extension` and passing the factory in ``connect(extensions=[...])``.
"""

from .base import ClientExtensionFactory, Extension, ExtensionParameter
from .permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate

__all__ = [
    "Extension",
    "ClientExtensionFactory",
    "ExtensionParameter",
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
]
