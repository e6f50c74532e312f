"""The OpenAPI schema tells the truth about auth and errors, so generated clients, /docs and
schema-driven tests (Schemathesis) know what to expect.

- Operations that need a key declare bearer security and may answer 401 and 429 (rate limits).
- FastAPI documents 422 `HTTPValidationError`; this service answers bad input with 400 and OpenAI's
  error object (`app/api/errors.py`), so 422 is replaced by 400 with that shape.
- Streaming operations may answer `text/event-stream`.
- Operations with path parameters may answer 404; operations that take a body may answer 404 (an
  unknown model), 413 (body or prompt too large), 429 (queue full), 503 (model not ready or
  unreachable) and 504 (timeouts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.auth.public import is_public
from app.protocol.ollama import is_ollama_path

SCHEME = "APIKey"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
#: One server-sent event (OpenAPI < 3.2: `schema` describes each event): a JSON chunk, or `[DONE]` last.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string", "pattern": "^(\\[DONE\\]|\\{[\\s\\S]*\\})$"},
        "event": {"type": "string"},
        "id": {"type": "string"},
    },
}
BODY_RESPONSES = {
    "404": "Unknown model (or other named resource).",
    "413": "Request body or prompt too large.",
    "429": "The model's queue is full (Retry-After).",
    "503": "The model is loading, not configured or unreachable, or the server is shutting down.",
    "504": "The model exceeded its first-token or total timeout.",
}
AUTH_RESPONSES = {
    "401": "Missing, wrong or revoked API key.",
    "429": "Rate limit reached (Retry-After and x-ratelimit-* headers) or the model's queue is full.",
}


#: Ollama's error object, under its paths (`app.protocol.ollama`).
OLLAMA_ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
#: One NDJSON body of Ollama's chat or generate: objects, one per line.
NDJSON = {"schema": {"type": "string"}}


def _error_response(description: str, shape: str = "ErrorResponse") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
    }


def _streams(operation: dict[str, Any], path: str, schemas: dict[str, Any]) -> bool:
    """Streaming operations: `.../stream` routes, and bodies with a `stream` flag (chat completions)."""
    if path.endswith("/stream"):
        return True
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    ref = body.get("$ref", "")
    target = schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else body
    return "stream" in target.get("properties", {})


def _document_stream(operation: dict[str, Any], ndjson: bool = False) -> None:
    ok = operation["responses"].get("200")
    if ok is not None:
        media, schema = ("application/x-ndjson", NDJSON) if ndjson else ("text/event-stream", {"schema": SSE_EVENT})
        ok.setdefault("content", {}).setdefault(media, schema)


def _document_errors(operation: dict[str, Any], shape: str) -> None:
    responses = operation["responses"]
    if responses.pop("422", None) is not None or operation.get("requestBody") or operation.get("parameters"):
        responses.setdefault("400", _error_response("Invalid request.", shape))
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        responses.setdefault("404", _error_response("Not found.", shape))
    if operation.get("requestBody"):
        for status, description in BODY_RESPONSES.items():
            responses.setdefault(status, _error_response(description, shape))


def secure_openapi(app: FastAPI, protect_metrics: bool) -> None:
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema and app.openapi_schema.get("x-slipway-auth"):
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`sk-slw-...`), required once any key exists.",
        }
        components.setdefault("schemas", {}).setdefault("ErrorResponse", ERROR_SCHEMA)
        components["schemas"].setdefault("OllamaError", OLLAMA_ERROR_SCHEMA)
        for path, operations in schema.get("paths", {}).items():
            public = is_public(path, metrics_open=not protect_metrics)
            ollama_path = is_ollama_path(path)
            shape = "OllamaError" if ollama_path else "ErrorResponse"
            for operation in operations.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                _document_errors(operation, shape)
                if _streams(operation, path, components.get("schemas", {})):
                    _document_stream(operation, ndjson=ollama_path)
                if public:
                    continue
                operation["security"] = [{SCHEME: []}]
                for status, description in AUTH_RESPONSES.items():
                    operation["responses"].setdefault(status, _error_response(description, shape))
        schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        schema["x-slipway-auth"] = True
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
