"""Errors the service raises on purpose, each carrying its HTTP status and OpenAI error fields.

Why one hierarchy: routes, services and providers raise these; one handler turns any of them into
OpenAI's error object, so every status in every API speaks the same shape and client SDKs parse it.
"""

from __future__ import annotations


class APIError(Exception):
    status_code: int = 500
    type: str = "server_error"
    code: str | None = None
    #: A failure of the model, not of the request (unreachable, timed out, overloaded upstream):
    #: `generate()` may retry it and fall back to the entry's fallbacks, before the first token only.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}

    def public_message(self) -> str:
        """The message as a client may see it: it may echo client input (a model name) or upstream
        text, so secrets are scrubbed from it too."""
        from app.core.logging import scrub

        return scrub(self.message)

    def to_dict(self) -> dict[str, object]:
        return {"error": {"message": self.public_message(), "type": self.type, "param": self.param, "code": self.code}}


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, object]:
    """OpenAI's error object, for answers built without an APIError (middleware, framework errors)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class InvalidRequest(APIError):
    status_code = 400
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    """The prompt alone does not fit the model's context window (OpenAI's code for the same case)."""

    code = "context_length_exceeded"


class Unauthorized(APIError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(APIError):
    status_code = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(APIError):
    status_code = 404
    type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(APIError):
    status_code = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(APIError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class Overloaded(RateLimited):
    """The model's queue is full: tell the client to come back, never hang."""

    code = "model_overloaded"


class ServiceUnavailable(APIError):
    status_code = 503
    type = "service_unavailable"
    code = "service_unavailable"


class UpstreamTimeout(APIError):
    status_code = 504
    type = "timeout_error"
    code = "timeout"


class UpstreamFormatError(APIError):
    """The model's answer is not in the shape the request asked for (JSON, a schema)."""

    status_code = 502
    type = "server_error"
    code = "invalid_model_output"


class GenerationError(APIError):
    status_code = 500
    type = "server_error"
    code = "generation_failed"


class BodyTooLarge(Exception):
    """A request body passed the limit while being read (`app.middleware.body_limit`)."""
