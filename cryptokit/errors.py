"""The one exception cryptokit raises for refused input."""


class CryptoError(Exception):
    """A refused key, signature or ciphertext, with a stable code. Never holds secrets."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        # `code` is what callers branch on and what the API returns; `message` is for humans.
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"CryptoError({self.code!r}, {self.message!r})"
