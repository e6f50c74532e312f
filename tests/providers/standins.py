"""Loopback stand-ins for Ollama, Gemini and OpenAI-compatible servers, speaking their wire protocols.

Nothing here reaches the real services, and no client library is mocked: Slipway's providers talk to
these servers through their real libraries (`ollama`, `google-genai`, `openai`). The text comes from the
real local model (SmolLM2 through `ChatLlamaCpp`), so the whole path carries real output, and every
request is recorded (`StandIn.seen`) so tests assert on what the client library sent.

Faults are chosen by the upstream model name a models-file entry asks for, so one running stand-in
serves every scenario at once:

    fail-<status>-<tag>   always answer HTTP <status> in the provider's error shape
    flaky-<n>-<tag>       answer 503 to the first <n> requests for this name, then normally
    slow-<tag>            wait (up to SLOW_S) before the first byte
    tools-<tag>           when the request offers tools, always call one (the local model does not
                          elect tools by itself; real models do): tests of the tool-call path
    cut-<tag>             send one piece of text, then drop the connection
    missing-<tag>         Ollama: 404 "model not found"
    safety-<tag>          Gemini: finishReason SAFETY, no text
    blocked-<tag>         Gemini: promptFeedback.blockReason SAFETY, no candidates
    badkey-<tag>          Gemini: 400 "API key not valid"

Embeddings (`/api/embed`, `:batchEmbedContents`, `/v1/embeddings`) answer every model with
`vector_of(text, size)`: a unit vector computed from the text (`size` = the request's dimensions, else
EMBED_SIZE), so a test can check which vector belongs to which input; the token count is the number
of words. The fault names above apply (`fail-<status>-...`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import struct
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.providers.llama_cpp import ChatLlamaCpp
from tests.protocol_drift import drift_route, gemini_shape, ollama_shape, openai_shape
from tests.servers import free_port

SLOW_S = 30.0
#: Vector size of the stand-ins' embeddings when a request names no dimensions.
EMBED_SIZE = 24


def vector_of(text: str, size: int = EMBED_SIZE) -> list[float]:
    """A deterministic unit vector for a text (not a meaningful embedding: a stand-in's)."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 + (i + 1) / 1000 for i in range(size)]
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


def words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


class CutConnection(Exception):
    """Raised inside a streaming body: uvicorn drops the connection mid-response."""


@dataclass
class Seen:
    """One request as the client library sent it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Answer:
    """What a stand-in answered: the text and the token counts it reported."""

    model: str
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LocalText:
    """Real text from the local model; one generation at a time (the model is not thread-safe)."""

    model: ChatLlamaCpp

    async def stream(self, messages: list[BaseMessage], params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yields {"text": ...} and {"tool_call": {"name", "arguments": {...}}} pieces, then
        {"usage": (prompt, completion), "finish": reason}. `params` may hold OpenAI-format `tools`,
        `tool_choice` and `response_format` (the local model's grammar makes the answer match)."""
        kwargs = {k: v for k, v in params.items() if v is not None}
        usage = (0, 0)
        finish = "stop"
        async for chunk in self.model.astream(messages, **kwargs):
            logprobs = (chunk.response_metadata.get("logprobs") or {}).get("content")
            if chunk.content:
                yield {"text": chunk.content, **({"logprobs": logprobs} if logprobs is not None else {})}
            elif logprobs:
                yield {"text": "", "logprobs": logprobs}
            for call in chunk.tool_call_chunks:
                yield {"tool_call": {"name": call["name"], "arguments": json.loads(call["args"] or "{}")}}
            if chunk.usage_metadata:
                usage = (chunk.usage_metadata["input_tokens"], chunk.usage_metadata["output_tokens"])
            finish = chunk.response_metadata.get("finish_reason", finish)
        yield {"usage": usage, "finish": finish}


@dataclass
class Behaviour:
    kind: str
    status: int = 0
    count: int = 0


def behaviour(model: str) -> Behaviour:
    parts = model.split("-")
    kind = parts[0]
    if kind == "fail":
        return Behaviour("fail", status=int(parts[1]))
    if kind == "flaky":
        return Behaviour("flaky", count=int(parts[1]))
    if kind in {"slow", "cut", "missing", "safety", "blocked", "badkey", "tools"}:
        return Behaviour(kind)
    return Behaviour("ok")


@dataclass
class StandIn:
    """One stand-in server on a free loopback port, run by uvicorn in a background thread."""

    name: str
    build: Callable[[StandIn], list[Route]]
    text: LocalText
    seen: list[Seen] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandIn:
        app = Starlette(routes=self.build(self))
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", timeout_graceful_shutdown=1, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"standin-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"stand-in {self.name} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    async def record(self, request: Request) -> Seen:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        seen = Seen(request.method, request.url.path, request.url.query, dict(request.headers), body, time.monotonic())
        self.seen.append(seen)
        return seen

    async def generate(
        self, model: str, messages: list[BaseMessage], params: dict[str, Any]
    ) -> AsyncIterator[dict[str, Any]]:
        """The local model's pieces (see `LocalText.stream`), recorded as an `Answer` once complete."""
        answer = Answer(model)
        if params.get("tools") and behaviour(model).kind == "tools":
            params = {**params, "tool_choice": "required"}
        async for piece in self.text.stream(messages, params):
            if "text" in piece:
                answer.text += piece["text"]
            elif "tool_call" in piece:
                answer.tool_calls.append(piece["tool_call"])
            else:
                answer.prompt_tokens, answer.completion_tokens = piece["usage"]
                answer.finish = piece["finish"]
                self.answers.append(answer)
            yield piece

    def answers_for(self, model: str) -> list[Answer]:
        return [a for a in self.answers if a.model == model]

    def requests_for(self, model: str) -> list[Seen]:
        return [s for s in self.seen if model_of(s) == model]

    def fault(self, model: str) -> Behaviour | None:
        """The fault this request must show, if any (counts requests per model for `flaky`)."""
        self.calls[model] += 1
        b = behaviour(model)
        if b.kind == "flaky":
            return Behaviour("fail", status=503) if self.calls[model] <= b.count else None
        return None if b.kind == "ok" else b


def model_of(seen: Seen) -> str | None:
    if isinstance(seen.body, dict) and "model" in seen.body:
        return seen.body["model"]
    if ":" in seen.path and "/models/" in seen.path:  # Gemini: /v1[beta]/models/<model>:<method>
        return seen.path.split("/models/", 1)[1].rsplit(":", 1)[0]
    return None


def to_messages(items: list[tuple[str, str]]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage, "model": AIMessage}
    return [kinds.get(role, HumanMessage)(content) for role, content in items]


async def slow() -> None:
    await asyncio.sleep(SLOW_S)


def _format(value: Any) -> dict[str, Any] | None:
    """Ollama's `format` ("json", or a JSON Schema) as the local model's response format."""
    if value == "json":
        return {"type": "json_object"}
    if isinstance(value, dict):
        return {"type": "json_schema", "schema": value}
    return None


def _gemini_output(body: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Gemini's function declarations, function-calling mode and JSON mode as the local model's
    `tools`, `tool_choice` and `response_format`."""
    out: dict[str, Any] = {}
    declarations = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
    if declarations:
        out["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": d["name"],
                    "description": d.get("description", ""),
                    "parameters": d.get("parametersJsonSchema")
                    or json_schema(d.get("parameters") or {"type": "OBJECT"}),
                },
            }
            for d in declarations
        ]
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        allowed = calling.get("allowedFunctionNames") or []
        mode = calling.get("mode")
        out["tool_choice"] = (
            allowed[0] if mode == "ANY" and len(allowed) == 1 else "required" if mode == "ANY" else None
        )
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or (
            json_schema(config["responseSchema"]) if config.get("responseSchema") else None
        )
        out["response_format"] = {"type": "json_schema", "schema": schema} if schema else {"type": "json_object"}
    return out


def json_schema(gemini: Any) -> Any:
    """A Gemini `Schema` (OpenAPI subset, upper-case types) as JSON Schema, for the local grammar."""
    if isinstance(gemini, list):
        return [json_schema(v) for v in gemini]
    if not isinstance(gemini, dict):
        return gemini
    out = {}
    for key, value in gemini.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key in ("properties",):
            out[key] = {k: json_schema(v) for k, v in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = json_schema(value)
        elif key in (
            "required",
            "enum",
            "minimum",
            "maximum",
            "maxItems",
            "minItems",
            "maxLength",
            "minLength",
            "description",
        ):
            out[key] = value
    return out


# --- Ollama: /api/chat (NDJSON), /api/tags -----------------------------------------------------------


def ollama_routes(standin: StandIn) -> list[Route]:
    def now() -> str:
        return datetime.now(UTC).isoformat().replace("+00:00", "Z")

    async def tags(request: Request) -> JSONResponse:
        await standin.record(request)
        return JSONResponse(
            {"models": [{"name": "llama3.1:8b", "model": "llama3.1:8b", "modified_at": now(), "size": 4920753328}]}
        )

    async def chat(request: Request) -> Response:
        seen = await standin.record(request)
        body = seen.body
        model = body["model"]
        fault = standin.fault(model)
        if fault and fault.kind == "fail":
            return JSONResponse({"error": f"stand-in failure {fault.status}"}, status_code=fault.status)
        if fault and fault.kind == "missing":
            return JSONResponse({"error": f'model "{model}" not found, try pulling it first'}, status_code=404)
        options = body.get("options") or {}
        params = {
            "temperature": options.get("temperature"),
            "top_p": options.get("top_p"),
            "max_tokens": options.get("num_predict"),
            "seed": options.get("seed"),
            "stop": options.get("stop"),
            # Ollama takes OpenAI-format tools, and `format`: "json" or a JSON Schema.
            "tools": body.get("tools"),
            "response_format": _format(body.get("format")),
        }
        messages = to_messages([(m["role"], m.get("content", "")) for m in body["messages"]])

        async def lines() -> AsyncIterator[bytes]:
            if fault and fault.kind == "slow":
                await slow()
            async for piece in standin.generate(model, messages, params):
                if "tool_call" in piece:
                    call = {
                        "function": {"name": piece["tool_call"]["name"], "arguments": piece["tool_call"]["arguments"]}
                    }
                    message = {"role": "assistant", "content": "", "tool_calls": [call]}
                    yield (
                        json.dumps({"model": model, "created_at": now(), "message": message, "done": False}).encode()
                        + b"\n"
                    )
                elif "text" in piece:
                    line = {
                        "model": model,
                        "created_at": now(),
                        "message": {"role": "assistant", "content": piece["text"]},
                    }
                    yield json.dumps({**line, "done": False}).encode() + b"\n"
                    if fault and fault.kind == "cut":
                        raise CutConnection
                else:
                    prompt, completion = piece["usage"]
                    final = {
                        "model": model,
                        "created_at": now(),
                        "message": {"role": "assistant", "content": ""},
                        "done": True,
                        "done_reason": piece["finish"],
                        "total_duration": 1000,
                        "load_duration": 10,
                        "prompt_eval_count": prompt,
                        "prompt_eval_duration": 100,
                        "eval_count": completion,
                        "eval_duration": 800,
                    }
                    yield json.dumps(final).encode() + b"\n"

        if body.get("stream", True):
            return StreamingResponse(lines(), media_type="application/x-ndjson")
        text, final, calls = "", {}, []
        async for line in lines():
            part = json.loads(line)
            text += part["message"]["content"]
            calls += part["message"].get("tool_calls", [])
            final = part
        final["message"]["content"] = text
        if calls:
            final["message"]["tool_calls"] = calls
        return JSONResponse(final)

    async def embed(request: Request) -> Response:
        body = (await standin.record(request)).body
        fault = standin.fault(body["model"])
        if fault and fault.kind == "fail":
            return JSONResponse({"error": f"stand-in failure {fault.status}"}, status_code=fault.status)
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        size = body.get("dimensions") or EMBED_SIZE
        return JSONResponse(
            {
                "model": body["model"],
                "embeddings": [vector_of(t, size) for t in texts],
                "total_duration": 1000,
                "load_duration": 10,
                "prompt_eval_count": words(texts),
            }
        )

    return [
        Route("/api/tags", tags),
        Route("/api/chat", chat, methods=["POST"]),
        Route("/api/embed", embed, methods=["POST"]),
        drift_route("Ollama", "GET /api/tags, POST /api/chat, POST /api/embed", ollama_shape),
    ]


# --- Gemini: generateContent / streamGenerateContent?alt=sse -------------------------------------------

GEMINI_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}


def gemini_error(status: int, message: str) -> JSONResponse:
    name = GEMINI_STATUS.get(status, "UNAVAILABLE" if status == 503 else "INTERNAL")
    return JSONResponse({"error": {"code": status, "message": message, "status": name}}, status_code=status)


def gemini_routes(standin: StandIn) -> list[Route]:
    async def models(request: Request) -> Response:
        seen = await standin.record(request)
        model, _, method = request.path_params["rest"].rpartition(":")
        if method not in ("generateContent", "streamGenerateContent", "batchEmbedContents"):
            return gemini_error(404, f"unknown method {method}")
        fault = standin.fault(model)
        if fault and fault.kind == "fail":
            return gemini_error(fault.status, f"stand-in failure {fault.status}")
        if method == "batchEmbedContents":
            requests = seen.body["requests"]
            texts = ["".join(p.get("text", "") for p in r["content"]["parts"]) for r in requests]
            sizes = [r.get("outputDimensionality") or EMBED_SIZE for r in requests]
            return JSONResponse(
                {
                    "embeddings": [{"values": vector_of(t, n)} for t, n in zip(texts, sizes, strict=True)],
                    "usageMetadata": {"promptTokenCount": words(texts), "totalTokenCount": words(texts)},
                }
            )
        if fault and fault.kind == "badkey":
            return gemini_error(400, "API key not valid. Please pass a valid API key.")
        body = seen.body
        items: list[tuple[str, str]] = []
        system = body.get("systemInstruction") or body.get("system_instruction")
        if system:
            items.append(("system", "".join(p.get("text", "") for p in system["parts"])))
        for content in body.get("contents", []):
            items.append((content.get("role", "user"), "".join(p.get("text", "") for p in content["parts"])))
        config = body.get("generationConfig") or {}
        params = {
            "temperature": config.get("temperature"),
            "top_p": config.get("topP"),
            "max_tokens": config.get("maxOutputTokens"),
            "seed": config.get("seed"),
            "stop": config.get("stopSequences"),
            **_gemini_output(body, config),
        }
        version = model

        def usage(prompt: int, completion: int) -> dict[str, int]:
            return {
                "promptTokenCount": prompt,
                "candidatesTokenCount": completion,
                "totalTokenCount": prompt + completion,
            }

        async def responses() -> AsyncIterator[dict[str, Any]]:
            if fault and fault.kind == "slow":
                await slow()
            if fault and fault.kind == "blocked":
                yield {
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                    "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
                    "modelVersion": version,
                }
                return
            if fault and fault.kind == "safety":
                yield {
                    "candidates": [
                        {
                            "finishReason": "SAFETY",
                            "index": 0,
                            "safetyRatings": [
                                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
                            ],
                        }
                    ],
                    "usageMetadata": usage(7, 0),
                    "modelVersion": version,
                }
                return
            messages = to_messages(items)
            # Like Gemini: every chunk carries cumulative usage; the candidates count comes with the last.
            prompt_tokens = await asyncio.to_thread(standin.text.model.get_num_tokens_from_messages, messages)
            async for piece in standin.generate(model, messages, params):
                if "tool_call" in piece:
                    call = {
                        "functionCall": {"name": piece["tool_call"]["name"], "args": piece["tool_call"]["arguments"]}
                    }
                    yield {
                        "candidates": [{"content": {"role": "model", "parts": [call]}, "index": 0}],
                        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
                        "modelVersion": version,
                    }
                elif "text" in piece:
                    yield {
                        "candidates": [{"content": {"role": "model", "parts": [{"text": piece["text"]}]}, "index": 0}],
                        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
                        "modelVersion": version,
                    }
                    if fault and fault.kind == "cut":
                        raise CutConnection
                else:
                    prompt_tokens, completion = piece["usage"]
                    finish = {"stop": "STOP", "length": "MAX_TOKENS"}.get(piece["finish"], "STOP")
                    yield {
                        "candidates": [
                            {"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": finish, "index": 0}
                        ],
                        "usageMetadata": usage(prompt_tokens, completion),
                        "modelVersion": version,
                    }

        if method == "streamGenerateContent":

            async def sse() -> AsyncIterator[bytes]:
                async for item in responses():
                    yield b"data: " + json.dumps(item).encode() + b"\r\n\r\n"

            return StreamingResponse(sse(), media_type="text/event-stream")
        text, last, calls = "", {}, []
        async for item in responses():
            for candidate in item.get("candidates", []):
                parts = candidate.get("content", {}).get("parts", [])
                text += "".join(p.get("text", "") for p in parts)
                calls += [p for p in parts if "functionCall" in p]
            last = item
        for candidate in last.get("candidates", []):
            if "content" in candidate:
                candidate["content"]["parts"] = [{"text": text}] if text or not calls else calls
        return JSONResponse(last)

    # google-genai 2.x calls /v1beta, 3.x calls /v1: the real API serves both, so does the stand-in.
    return [
        Route("/v1beta/models/{rest:path}", models, methods=["POST"]),
        Route("/v1/models/{rest:path}", models, methods=["POST"]),
        drift_route(
            "Gemini",
            "POST /v1/models/<model>:generateContent|streamGenerateContent|batchEmbedContents and the same under /v1beta",
            gemini_shape,
        ),
    ]


# --- OpenAI: /v1/chat/completions ------------------------------------------------------------------------


def openai_error(status: int, message: str) -> JSONResponse:
    kind = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)


def _openai_format(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("type") == "text":
        return None
    if value.get("type") == "json_schema":
        return {"type": "json_schema", "schema": value["json_schema"]["schema"]}
    return {"type": "json_object"}


def openai_routes(standin: StandIn) -> list[Route]:
    async def completions(request: Request) -> Response:
        seen = await standin.record(request)
        body = seen.body
        model = body["model"]
        fault = standin.fault(model)
        if fault and fault.kind == "fail":
            return openai_error(fault.status, f"stand-in failure {fault.status}")
        params = {
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
            "seed": body.get("seed"),
            "stop": [body["stop"]] if isinstance(body.get("stop"), str) else body.get("stop"),
            "tools": body.get("tools"),
            "tool_choice": body.get("tool_choice"),
            "response_format": _openai_format(body.get("response_format")),
            "logprobs": (body.get("top_logprobs") or 0) if body.get("logprobs") else None,
        }
        messages = to_messages([(m["role"], m.get("content") or "") for m in body["messages"]])
        cid, created = "chatcmpl-standin", int(time.time())

        def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
            }

        async def events() -> AsyncIterator[bytes]:
            if fault and fault.kind == "slow":
                await slow()
            yield b"data: " + json.dumps(chunk({"role": "assistant", "content": ""})).encode() + b"\n\n"
            calls = 0
            async for piece in standin.generate(model, messages, params):
                if "tool_call" in piece:  # in two fragments, as OpenAI streams them
                    name, arguments = piece["tool_call"]["name"], json.dumps(piece["tool_call"]["arguments"])
                    head = {
                        "index": calls,
                        "id": f"call_standin_{calls}",
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                    yield b"data: " + json.dumps(chunk({"tool_calls": [head]})).encode() + b"\n\n"
                    rest = {"index": calls, "function": {"arguments": arguments}}
                    yield b"data: " + json.dumps(chunk({"tool_calls": [rest]})).encode() + b"\n\n"
                    calls += 1
                elif "text" in piece:
                    event = chunk({"content": piece["text"]})
                    if "logprobs" in piece:
                        event["choices"][0]["logprobs"] = {"content": piece["logprobs"], "refusal": None}
                    yield b"data: " + json.dumps(event).encode() + b"\n\n"
                    if fault and fault.kind == "cut":
                        raise CutConnection
                else:
                    yield b"data: " + json.dumps(chunk({}, piece["finish"])).encode() + b"\n\n"
                    if (body.get("stream_options") or {}).get("include_usage"):
                        prompt, completion = piece["usage"]
                        last = chunk(None)
                        last["usage"] = {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                        }
                        yield b"data: " + json.dumps(last).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        if body.get("stream"):
            return StreamingResponse(events(), media_type="text/event-stream")
        if fault and fault.kind == "slow":
            await slow()
        text, usage, finish = "", (0, 0), "stop"
        async for piece in standin.generate(model, messages, params):
            text += piece.get("text", "")
            usage = piece.get("usage", usage)
            finish = piece.get("finish", finish)
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
            }
        )

    async def embeddings(request: Request) -> Response:
        body = (await standin.record(request)).body
        fault = standin.fault(body["model"])
        if fault and fault.kind == "fail":
            return openai_error(fault.status, f"stand-in failure {fault.status}")
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        size = body.get("dimensions") or EMBED_SIZE

        def encoded(vector: list[float]) -> Any:
            if body.get("encoding_format") == "base64":
                return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            return vector

        data = [
            {"object": "embedding", "index": i, "embedding": encoded(vector_of(t, size))} for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": words(texts), "total_tokens": words(texts)}
        return JSONResponse({"object": "list", "data": data[::-1], "model": body["model"], "usage": usage})

    return [
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        drift_route("OpenAI-compatible", "POST /v1/chat/completions, POST /v1/embeddings", openai_shape),
    ]
