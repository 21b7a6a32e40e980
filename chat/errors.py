from securechat.jsonapi import ApiError


class ChatError(ApiError):
    """A refused chat request: a stable code for the `error` frame and a sentence."""
