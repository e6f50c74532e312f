"""The request path to an Ollama server without LangChain: `POST /api/chat` on one pooled HTTP client
(`upstream_http`: aiohttp), the body built once with orjson, the NDJSON answer parsed line by line.

Why: LangChain's `ChatOllama.astream` builds a callback run, the ollama client's pydantic request and
response objects and an `AIMessageChunk` per line; on the API path that is most of the CPU a request
costs (the same finding as for OpenAI-compatible upstreams, `openai_wire`). Chains keep the LangChain
model the provider builds (same server, same options).

What Ollama receives is what `ChatOllama` sends through the ollama client (tests/providers/
test_wire_equivalence.py records both and compares them): `model`, `messages` (role, content, images,
tool calls with their arguments as objects; empty values left out, as the ollama client does),
`stream: true`, `options` (`num_ctx` and the sampling parameters that are set), `format` (`"json"` or
a schema) and `tools` (empty when none are offered).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage

from app.core.config import Settings
from app.core.models_file import ModelSpec
from app.core.output import TEXT, OutputSpec
from app.providers.base import Piece
from app.providers.upstream_http import UpstreamClient

ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}
#: Generic request parameter -> Ollama option.
OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "num_predict",
    "seed": "seed",
    "stop": "stop",
}


class OllamaHTTPError(Exception):
    """Ollama answered with an error status, or an error line in its stream."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = message


def message_dict(message: BaseMessage) -> dict[str, Any]:
    """One message as the ollama client sends it: empty fields dropped (its `_copy_messages`)."""
    role = message.role if isinstance(message, ChatMessage) else ROLES.get(message.type, message.type)
    if isinstance(message.content, str):
        content = message.content
    else:  # parts: ChatOllama joins their text, each after a newline
        content = "".join(
            f"\n{part}" if isinstance(part, str) else f"\n{part['text']}"
            for part in message.content
            if isinstance(part, str) or part.get("type") == "text"
        )
    out: dict[str, Any] = {"role": role}
    if content:
        out["content"] = content
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = [{"function": {"name": c["name"], "arguments": c["args"]}} for c in message.tool_calls]
    return out


def server_url(host: str) -> str:
    """A host as the ollama client reads it (`OLLAMA_HOST` may be `1.2.3.4:11434`, `example.com` or a
    URL): no scheme means http on port 11434; a scheme without a port means its default port."""
    scheme, sep, rest = host.strip().partition("://")
    if not sep:
        scheme, rest, default_port = "http", host.strip(), 11434
    else:
        default_port = 443 if scheme == "https" else 80
    parts = urlsplit(f"{scheme}://{rest}")
    hostname = parts.hostname or "127.0.0.1"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return f"{scheme}://{hostname}:{parts.port or default_port}{parts.path.rstrip('/')}"


def _http_error(status: int, raw: bytes) -> OllamaHTTPError:
    return OllamaHTTPError(status, _error_text(raw))


def _error_text(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")[:300]
    return str(data.get("error", data)) if isinstance(data, dict) else str(data)


class OllamaWire:
    def __init__(self, spec: ModelSpec, model: str, settings: Settings, host: str, num_ctx: int) -> None:
        self.url = server_url(host) + "/api/chat"
        self.model = model
        self.num_ctx = num_ctx
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self.http = UpstreamClient(
            read_timeout_s=spec.timeout_s or settings.default_timeout_s, connect_timeout_s=spec.connect_timeout_s
        )

    def body(self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec = TEXT) -> bytes:
        options = {"num_ctx": self.num_ctx}
        options.update({OPTION_NAMES[k]: v for k, v in params.items() if k in OPTION_NAMES and v is not None})
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [message_dict(m) for m in messages],
            "stream": True,
            "options": options,
        }
        if output.json_schema is not None:
            request["format"] = output.json_schema
        elif output.json_object:
            request["format"] = "json"
        # The ollama client always sends `tools` (an empty list when none are offered).
        request["tools"] = [t.openai() for t in output.tools] if output.offers_tools else []
        return orjson.dumps(request)

    async def stream(
        self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec = TEXT
    ) -> AsyncIterator[Piece]:
        body = self.body(messages, params, output)
        calls = 0
        lines = self.http.lines(self.url, body, self.headers, _http_error)
        try:
            async for batch in lines:
                for line in batch:
                    if not line:
                        continue
                    event = orjson.loads(line)
                    if "error" in event:
                        raise OllamaHTTPError(500, str(event["error"]))
                    message = event.get("message") or {}
                    piece = Piece(text=message.get("content") or "")
                    tool_calls = message.get("tool_calls")
                    if tool_calls:  # Ollama names no call ids: each call gets one, as LangChain did
                        piece.tool_calls = []
                        for call in tool_calls:
                            function = call.get("function") or {}
                            piece.tool_calls.append(
                                {
                                    "index": calls,
                                    "id": str(uuid.uuid4()),
                                    "type": "function",
                                    "function": {
                                        "name": function.get("name") or "",
                                        "arguments": orjson.dumps(function.get("arguments") or {}).decode(),
                                    },
                                }
                            )
                            calls += 1
                    if event.get("done"):
                        if event.get("done_reason") == "load" and not piece.text:
                            continue  # the model was only loaded: no answer in this line
                        piece.finish_reason = event.get("done_reason") or "stop"
                        piece.prompt_tokens = event.get("prompt_eval_count")
                        piece.completion_tokens = event.get("eval_count")
                    yield piece
        finally:
            await lines.aclose()  # type: ignore[attr-defined]  # closes the upstream connection early

    async def aclose(self) -> None:
        await self.http.aclose()
