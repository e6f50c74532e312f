"""Small helpers for pure ASGI middleware: answering with OpenAI's error object without a framework."""

from __future__ import annotations

import orjson
from starlette.types import Scope, Send

from app.core.errors import APIError
from app.core.scope import route_path
from app.protocol import ollama
from app.protocol.frames import error_frame


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def bearer_token(scope: Scope) -> str | None:
    """The key from `Authorization: Bearer <key>`; None when absent or not a bearer header."""
    raw = header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


async def send_error(
    send: Send, error: APIError, extra_headers: list[tuple[bytes, bytes]] | None = None, scope: Scope | None = None
) -> None:
    """The error in the API's own shape: OpenAI's error object, or Ollama's under its paths."""
    shaped = scope is not None and ollama.is_ollama_path(route_path(scope))
    body = orjson.dumps(ollama.error_body(error.public_message()) if shaped else error.to_dict())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def deny_websocket(scope: Scope, send: Send, error: APIError, close_code: int) -> None:
    """Refuse a WebSocket handshake: an HTTP error response where the server supports it, else a close."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = orjson.dumps(error.to_dict())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": error.status_code, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": close_code, "reason": error.message[:120]})


def socket_error(error: APIError) -> str:
    """An error as a WebSocket text frame, in the one error frame shape (`app.protocol.frames`)."""
    return orjson.dumps(error_frame(error)).decode()
