class CryptoError(Exception):
    """A refused key, signature or ciphertext, with a stable code. Never holds secrets."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
