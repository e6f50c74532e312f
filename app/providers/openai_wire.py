"""The request path to an OpenAI-compatible upstream without the SDK: one pooled HTTP client per
upstream (`upstream_http`: aiohttp), the request body built once with orjson, SSE lines parsed with orjson.

Measured with `python -m bench` (profile): through LangChain's `ChatOpenAI.astream`, the openai SDK
and LangChain's layers took about 55% of Slipway's CPU per request (the SDK builds pydantic objects
for every chunk), more than the rest of the request together. The API routes, conversations and the
WebSocket therefore stream through this client; chains keep running on the LangChain model the
provider builds (same upstream, same parameters), where LangChain's composition is the point.

What the upstream receives is what `ChatOpenAI` sends: the entry's default parameters overridden by
the request's, `max_completion_tokens`, `stream_options.include_usage`, the bearer key if any.
Closing the stream (client gone, timeout) closes the upstream connection, which stops generation on
servers that notice (vLLM, llama.cpp's server).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from app.core.config import Settings
from app.core.models_file import ModelSpec
from app.core.output import TEXT, OutputSpec
from app.providers.base import Piece
from app.providers.upstream_http import UpstreamClient

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool", "chat": "user"}
#: Generic parameter -> the wire name (what ChatOpenAI sends).
WIRE_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_completion_tokens",
    "seed": "seed",
    "stop": "stop",
}


class UpstreamHTTPError(Exception):
    """The upstream answered with an error status (or an error event in its stream)."""

    def __init__(self, status_code: int, message: str | None) -> None:
        super().__init__(f"HTTP {status_code}: {message or ''}".strip())
        self.status_code = status_code
        self.message = message


def message_dict(message: BaseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": ROLES.get(message.type, message.type), "content": message.content}
    if isinstance(message, AIMessage) and message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
            for c in message.tool_calls
        ]
    elif isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    return out


def output_fields(output: OutputSpec) -> dict[str, Any]:
    """The answer's shape as OpenAI's request fields (passed through: the upstream enforces them)."""
    fields: dict[str, Any] = {}
    if output.tools:
        fields["tools"] = [t.openai() for t in output.tools]
        choice = output.tool_choice
        named = choice not in ("none", "auto", "required")
        fields["tool_choice"] = {"type": "function", "function": {"name": choice}} if named else choice
        if not output.parallel_tool_calls:
            fields["parallel_tool_calls"] = False
    if output.json_schema is not None:
        fields["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": output.schema_name, "schema": output.json_schema, "strict": True},
        }
    elif output.json_object:
        fields["response_format"] = {"type": "json_object"}
    if output.logprobs is not None:
        fields["logprobs"] = True
        if output.logprobs:
            fields["top_logprobs"] = output.logprobs
    return fields


def _http_error(status: int, raw: bytes) -> UpstreamHTTPError:
    return UpstreamHTTPError(status, _error_message(raw))


def _error_message(raw: bytes) -> str | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")[:300] or None
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        return str(error.get("message") or "") or None
    return str(error) if error else None


class OpenAIWire:
    def __init__(self, spec: ModelSpec, model: str, settings: Settings, api_key: str | None) -> None:
        assert spec.base_url is not None
        self.url = spec.base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        p = spec.params
        defaults = {
            "temperature": p.temperature,
            "top_p": p.top_p,
            "max_tokens": p.max_tokens,
            "seed": p.seed,
            "stop": p.stop,
        }
        self.defaults = {WIRE_NAMES[k]: v for k, v in defaults.items() if v is not None}
        self.http = UpstreamClient(
            read_timeout_s=spec.timeout_s or settings.default_timeout_s, connect_timeout_s=spec.connect_timeout_s
        )

    def body(self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec = TEXT) -> bytes:
        request = {
            "model": self.model,
            "messages": [message_dict(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.defaults,
            **{WIRE_NAMES[k]: v for k, v in params.items() if k in WIRE_NAMES and v is not None},
            **output_fields(output),
        }
        return orjson.dumps(request)

    async def stream(
        self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec = TEXT
    ) -> AsyncIterator[Piece]:
        body = self.body(messages, params, output)
        lines = self.http.lines(self.url, body, self.headers, _http_error)
        try:
            async for batch in lines:
                for line in batch:
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        return
                    event = orjson.loads(data)
                    if "error" in event:
                        error = event["error"]
                        status = error.get("code") if isinstance(error, dict) else None
                        raise UpstreamHTTPError(status if isinstance(status, int) else 502, _error_message(data))
                    piece = Piece()
                    choices = event.get("choices")
                    if choices:
                        choice = choices[0]
                        delta = choice.get("delta") or {}
                        piece.text = delta.get("content") or ""
                        piece.tool_calls = delta.get("tool_calls") or None
                        piece.logprobs = (choice.get("logprobs") or {}).get("content")
                        piece.finish_reason = choice.get("finish_reason")
                    usage = event.get("usage")
                    if usage:
                        piece.prompt_tokens = usage.get("prompt_tokens")
                        piece.completion_tokens = usage.get("completion_tokens")
                    yield piece
        finally:
            await lines.aclose()  # type: ignore[attr-defined]  # closes the upstream connection early

    async def aclose(self) -> None:
        await self.http.aclose()
