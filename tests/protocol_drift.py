"""What a protocol stand-in answers when a client calls something it does not serve.

Client libraries move (google-genai 3.x moved Gemini from `/v1beta` to `/v1`): when a stand-in gets a
path it does not know, the cause is the client, not Slipway. Every stand-in ends its routes with
`drift_route`, which answers 501 in the provider's own error shape and records one line saying so;
`tests/conftest.py` fails the test with that line first, so a protocol change reads as one sentence
("the Gemini stand-in got POST /v2/...: the client changed its protocol") instead of a 503 from deep
inside Slipway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DRIFT: list[str] = []
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def gemini_shape(message: str) -> dict[str, Any]:
    return {"error": {"code": 501, "message": message, "status": "UNIMPLEMENTED"}}


def ollama_shape(message: str) -> dict[str, Any]:
    return {"error": message}


def openai_shape(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "protocol_drift"}}


def drift_line(provider: str, method: str, path: str, serves: str) -> str:
    return f"the {provider} stand-in got {method} {path}: the client changed its protocol (the stand-in serves {serves})"


def drift_route(provider: str, serves: str, shape: Callable[[str], dict[str, Any]]) -> Route:
    """A catch-all route; mount it last."""

    async def unexpected(request: Request) -> JSONResponse:
        line = drift_line(provider, request.method, request.url.path, serves)
        DRIFT.append(line)
        return JSONResponse(shape(line), status_code=501)

    return Route("/{path:path}", unexpected, methods=ALL_METHODS)
