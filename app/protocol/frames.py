"""The frames of the native chat API's streams, the same on SSE and on the WebSocket:
`delta`, `done`, and one `error` shape for every error on a socket (auth, rate limits, turns)."""

from __future__ import annotations

from typing import Any

from app.core.errors import APIError
from app.protocol.sessions import MessageOut


def delta_frame(text: str) -> dict[str, Any]:
    return {"type": "delta", "content": text}


def done_frame(message: MessageOut, user_message_id: int) -> dict[str, Any]:
    return {
        "type": "done",
        "message_id": message.id,
        "user_message_id": user_message_id,
        "usage": message.usage.model_dump() if message.usage else None,
        "model": message.model,
        "status": message.status,
        "finish_reason": message.finish_reason,
        "latency_ms": message.latency_ms,
    }


def error_frame(error: APIError, message_id: int | None = None) -> dict[str, Any]:
    """`{"type": "error", "code", "message", "error": {...OpenAI's error object...}}`, plus the stored
    partial answer's `message_id` and `retry_after` (seconds) when they apply."""
    body = error.to_dict()
    inner: Any = body["error"]
    frame: dict[str, Any] = {"type": "error", "code": error.code, "message": inner["message"], **body}
    if message_id is not None:
        frame["message_id"] = message_id
    if "Retry-After" in error.headers:
        frame["retry_after"] = int(error.headers["Retry-After"])
    return frame
