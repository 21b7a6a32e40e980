class ProtocolError(Exception):
    """The server refused a request: an `error` frame or an HTTP error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TrustError(Exception):
    """This client refuses a certificate, a key record or a message. `conversation` is the
    conversation it concerns, when the client knows it."""

    def __init__(self, code: str, message: str, *, conversation: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.conversation = conversation


class KeyChanged(TrustError):
    """`username`'s `kind` key is not the one pinned: `old` and `new` are the SHA-256
    fingerprints of the pinned and the presented key. Compare safety numbers with that
    person, then `ChatClient.accept_key_change(username)`."""

    def __init__(self, username: str, kind: str, old: str, new: str) -> None:
        super().__init__("key_changed", f"{username}'s {kind} key changed from {old} to {new}.")
        self.username, self.kind, self.old, self.new = username, kind, old, new


class KeyStoreError(Exception):
    """The key directory cannot be used as it is: keys that do not decrypt, a missing
    passphrase, or keys certified on the server that are not in the directory."""


class NoMessage(TimeoutError):
    """Nothing arrived in time. Still a TimeoutError; its text says what was awaited and
    what this client refused meanwhile (a refusal on the other side is not visible here)."""
