"""The OpenAPI schema says which operations need a key (bearer auth) and that they may answer 401 and
429, so generated clients, /docs and schema-driven tests (Schemathesis) know what to expect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.auth.middleware import is_public

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
AUTH_RESPONSES = {
    "401": "Missing, wrong or revoked API key.",
    "429": "Rate limit reached (Retry-After and x-ratelimit-* headers) or the model's queue is full.",
}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


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
        for path, operations in schema.get("paths", {}).items():
            if is_public(path, metrics_open=not protect_metrics):
                continue
            for operation in operations.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                operation["security"] = [{SCHEME: []}]
                for status, description in AUTH_RESPONSES.items():
                    operation["responses"].setdefault(status, _error_response(description))
        schema["x-slipway-auth"] = True
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
