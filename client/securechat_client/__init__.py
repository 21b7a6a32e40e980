"""SecureChat's Python client: the same protocol and keys as the browser.

from securechat_client import ChatClient, KeyChanged
"""

from .client import ChatClient
from .conversation import DecryptedMessage
from .errors import KeyChanged, KeyStoreError, NoMessage, ProtocolError, TrustError

__all__ = [
    "ChatClient",
    "DecryptedMessage",
    "KeyChanged",
    "KeyStoreError",
    "NoMessage",
    "ProtocolError",
    "TrustError",
]
