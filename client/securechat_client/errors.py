class ProtocolError(Exception):
    """The server refused a request: an `error` frame or an HTTP error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TrustError(Exception):
    """This client refuses a certificate, a key record or a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
