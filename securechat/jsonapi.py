"""The JSON endpoint convention: session auth, CSRF (Django's middleware), a pydantic body
schema with extra fields forbidden, and errors as {"code", "message"} with a status."""

import base64
import binascii
import functools
import json
from collections.abc import Callable
from typing import Annotated

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from securechat import quotas


class ApiError(Exception):
    """A refused request, with a stable machine code and a sentence for people."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _b64decode(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be valid base64") from None


# A base64 string in JSON, bytes in Python.
B64Bytes = Annotated[bytes, BeforeValidator(_b64decode)]


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def error_response(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def json_endpoint(*, methods: dict[str, type[Body] | None]) -> Callable:
    """Decorate `view(request, body)`; `methods` maps each allowed method to its schema."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            if not request.user.is_authenticated:
                return error_response("not_authenticated", "Log in first.", 401)
            wait = quotas.spend(
                "api", str(request.user.pk), limit=settings.API_REQUESTS_PER_MINUTE, window=60
            )
            if wait is not None:
                response = error_response(
                    "rate_limited", f"Too many requests; try again in {wait} s.", 429
                )
                response["Retry-After"] = str(wait)
                return response
            if request.method not in methods:
                return error_response("method_not_allowed", "Method not allowed.", 405)
            schema = methods[request.method]
            body = None
            try:
                if schema is not None:
                    body = schema.model_validate(json.loads(request.body or b"null"))
                return view(request, body, *args, **kwargs)
            except json.JSONDecodeError:
                return error_response("invalid_json", "The request body is not JSON.", 400)
            except ValidationError as exc:
                fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
                return error_response("invalid_request", f"Invalid field(s): {fields}.", 400)
            except ApiError as exc:
                return error_response(exc.code, exc.message, exc.status)

        return wrapper

    return decorate
