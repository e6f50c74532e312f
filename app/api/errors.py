"""Every error, in every API, as OpenAI's error object with the right status.

FastAPI's defaults (422 `{"detail": ...}`) break OpenAI client SDKs; these handlers replace them.
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.responses import JSONResponse
from app.core.errors import APIError, BodyTooLarge, InvalidRequest, PayloadTooLarge, error_body
from app.core.scope import route_path
from app.protocol import ollama

log = logging.getLogger(__name__)

_HTTP_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def api_error_response(exc: APIError, request: Request | None = None) -> JSONResponse:
    """OpenAI's error object; Ollama's `{"error": "..."}` under Ollama's paths (`/api/...` but sessions)."""
    if request is not None and ollama.is_ollama_path(route_path(request.scope)):
        return JSONResponse(ollama.error_body(exc.public_message()), status_code=exc.status_code, headers=exc.headers)
    return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=exc.headers)


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    """The first problem, with `param` naming the field as OpenAI does (`messages.0.role`)."""
    errors = exc.errors()
    if not errors:
        return InvalidRequest("invalid request")
    first = errors[0]
    if first.get("type") == "json_invalid":
        problem = str(first.get("ctx", {}).get("error", "invalid JSON"))
        if problem.endswith("lone UTF-16 surrogate, which is not text; send valid Unicode"):  # app.api.routing
            field = problem.split("'")[1]
            return InvalidRequest(f"Invalid value for '{field}': {problem}", param=field, code="invalid_value")
        return InvalidRequest(
            f"We could not parse the JSON body of your request ({problem}). "
            "Send valid JSON with Content-Type: application/json.",
            code="invalid_json",
        )
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    # Drop pydantic's union branch tags (e.g. `str`, `list[TextPart]`) from the location.
    loc = [p for p in loc if not (p[:1].islower() and ("[" in p or p in {"str", "int", "float", "bool"}))]
    param = ".".join(loc) or None
    message: str = first.get("msg") or "invalid value"
    if first.get("type") == "missing":
        message = f"'{param}' is a required property"
    elif param:
        message = f"Invalid value for '{param}': {message}"
    if first.get("type") == "model_attributes_type" and not loc:
        message = "The request body must be a JSON object"
    return InvalidRequest(
        message, param=param, code="invalid_value" if first.get("type") != "missing" else "missing_required_parameter"
    )


async def on_api_error(request: Request, exc: APIError) -> JSONResponse:
    return api_error_response(exc, request)


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    error = validation_error(exc)
    content_type = request.headers.get("content-type", "")
    if error.message == "The request body must be a JSON object" and "json" not in content_type:
        # FastAPI reads a body as JSON only when it is labelled so: say that, not "not an object".
        error = InvalidRequest(
            "The request body must be JSON sent with `Content-Type: application/json` "
            f"(this request's content type: {content_type[:100] or 'none'}).",
            code="invalid_content_type",
        )
    return api_error_response(error, request)


async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI wraps body-read errors in a 400
        return api_error_response(PayloadTooLarge("Request body too large."), request)
    type_, code = _HTTP_TYPES.get(exc.status_code, ("server_error", None))
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404 and message == "Not Found":
        message = "Unknown route. See /docs for the API."
    if exc.status_code == 405:
        message = "Method not allowed for this route. See /docs for the API."
    if ollama.is_ollama_path(route_path(request.scope)):
        return JSONResponse(ollama.error_body(message), status_code=exc.status_code)
    return JSONResponse(
        error_body(message, type_, None, code), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def on_unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error")
    return JSONResponse(
        error_body("The server had an error while processing your request.", "server_error", None, "internal_error"),
        status_code=500,
    )


#: For `FastAPI(exception_handlers=...)`.
EXCEPTION_HANDLERS = {
    APIError: on_api_error,
    RequestValidationError: on_validation_error,
    StarletteHTTPException: on_http_error,
    Exception: on_unexpected_error,
}
