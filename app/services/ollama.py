"""Ollama's API on the service's models: `/api/chat` and `/api/generate` answered by the same
generation as `/v1/chat/completions` (a request is translated to an OpenAI one, so every check, limit,
fallback and metric is the same), `/api/embed` by the embeddings service, and the model listing Ollama
clients probe (`tags`, `show`, `ps`).

Any models-file entry answers, whatever its provider: an Ollama client can talk to Gemini.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import ValidationError

from app.core.errors import InvalidRequest, NotFound
from app.protocol import ollama
from app.protocol.ollama import ChatRequest, EmbedRequest, GenerateRequest, Message
from app.protocol.openai import ChatCompletionRequest
from app.providers.registry import ModelHandle, ModelRegistry
from app.services.completions import Completions, Prepared
from app.services.embeddings import Embeddings
from app.services.events import Delta, Finished, StreamStarted
from app.services.first_event import FirstEvent
from app.services.tool_calls import ToolCalls


def openai_request(model: str, messages: list[Message], req: ChatRequest | GenerateRequest) -> ChatCompletionRequest:
    """The same request in OpenAI's terms (so it passes the same checks and limits)."""
    out: list[dict[str, Any]] = []
    calls: dict[str, str] = {}
    for index, m in enumerate(messages):
        if m.images:
            raise InvalidRequest(f"messages.{index}.images: the models served here take text only", param="images")
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["tool_calls"] = []
            for position, call in enumerate(m.tool_calls):
                call_id = f"call_{index}_{position}"
                calls[call.function.name] = call_id
                arguments = json.dumps(call.function.arguments)
                item["tool_calls"].append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": arguments},
                    }
                )
            item["content"] = m.content or None
        if m.role == "tool":
            item["tool_call_id"] = calls.get(m.tool_name or "", m.tool_name or f"call_{index}")
        out.append(item)
    o = req.options
    body: dict[str, Any] = {
        "model": ollama.entry_name(model),
        "messages": out,
        "temperature": o.temperature,
        "top_p": o.top_p,
        "max_tokens": o.sampling().max_tokens,
        "seed": o.seed,
        "stop": o.stop,
    }
    if req.format == "json":
        body["response_format"] = {"type": "json_object"}
    elif isinstance(req.format, dict):
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "format", "schema": req.format}}
    if isinstance(req, ChatRequest) and req.tools:
        body["tools"] = req.tools
    try:
        return ChatCompletionRequest.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:  # what the OpenAI request refuses, said in Ollama's request's terms
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequest(f"{where}: {first['msg']}", param=where) from None


def _line(item: dict[str, Any]) -> bytes:
    return orjson.dumps(item) + b"\n"


class OllamaAnswer:
    """One `/api/chat` or `/api/generate` answer: NDJSON objects (`lines()`), or one object (`whole()`).

    `first()` waits (bounded) for the first event before the status line goes out, so a request that
    fails at once gets its real status, as on the OpenAI path.
    """

    def __init__(self, completions: Completions, prepared: Prepared, model: str, generate: bool) -> None:
        self.prepared = prepared
        self.model = model
        self.generate = generate
        p = prepared
        self.events = completions.generator.generate(p.req.model, p.messages, p.params, p.output)
        self._events = FirstEvent(self.events)
        self.started = time.perf_counter()
        self.first_s: float | None = None
        self.calls = ToolCalls()

    async def first(self, wait_s: float) -> None:
        await self._events.wait(wait_s)

    def _piece(self, text: str, calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"model": self.model, "created_at": ollama.timestamp()}
        if self.generate:
            item["response"] = text
        else:
            item["message"] = {"role": "assistant", "content": text}
            if calls:
                item["message"]["tool_calls"] = [
                    {
                        "function": {
                            "name": c["function"]["name"],
                            "arguments": json.loads(c["function"]["arguments"] or "{}"),
                        }
                    }
                    for c in calls
                ]
        return item

    def _done(self, finished: Finished) -> dict[str, Any]:
        item = self._piece("")
        total = time.perf_counter() - self.started
        reason = "stop" if finished.finish_reason in ("stop", "tool_calls", "cancelled") else finished.finish_reason
        item.update(done=True, done_reason=reason)
        item.update(
            ollama.final_fields(
                finished.usage.prompt_tokens, finished.usage.completion_tokens, total, self.first_s or total
            )
        )
        return item

    async def lines(self) -> AsyncIterator[bytes]:
        """Text as it comes; tool calls once whole (Ollama sends a call in one object); then `done`."""
        try:
            async for event in self._events:
                if isinstance(event, Delta):
                    self.first_s = self.first_s or time.perf_counter() - self.started
                    self.calls.add(event.tool_calls or [])
                    if event.text:
                        yield _line({**self._piece(event.text), "done": False})
                    continue
                calls = self.calls.result()
                if calls:
                    yield _line({**self._piece("", calls), "done": False})
                yield _line(self._done(event))
        except StreamStarted as exc:
            yield _line(ollama.error_body(exc.error.public_message()))
        finally:
            await self.events.aclose()

    async def whole(self) -> dict[str, Any]:
        """One object (`stream: false`); a failure is the error as before the first token."""
        text: list[str] = []
        finished: Finished | None = None
        try:
            async for event in self._events:
                if isinstance(event, Delta):
                    self.first_s = self.first_s or time.perf_counter() - self.started
                    text.append(event.text)
                    self.calls.add(event.tool_calls or [])
                else:
                    finished = event
        except StreamStarted as exc:
            raise exc.error from None
        finally:
            await self.events.aclose()
        assert finished is not None
        return {**self._done(finished), **self._piece("".join(text), self.calls.result()), "done": True}

    async def aclose(self) -> None:
        await self._events.cancel()


class OllamaService:
    def __init__(self, completions: Completions, embeddings: Embeddings) -> None:
        self.completions = completions
        self.embeddings = embeddings
        self.registry: ModelRegistry = completions.generator.registry

    async def embed(self, req: EmbedRequest) -> dict[str, Any]:
        """`/api/embed`'s answer; no text at all answers no vectors (Ollama's way to load a model)."""
        name = ollama.entry_name(req.model)
        self.handle(req.model)  # Ollama's 404 for an unknown model
        texts = [t for t in req.texts if t]
        started = time.perf_counter()
        if not texts:
            self.registry.embedding(name)
            return {
                "model": req.model,
                "embeddings": [],
                "total_duration": 0,
                "load_duration": 0,
                "prompt_eval_count": 0,
            }
        embedding = await self.embeddings.embed(name, texts, req.dimensions)
        return {
            "model": req.model,
            "embeddings": embedding.result.vectors,
            "total_duration": int((time.perf_counter() - started) * 1e9),
            "load_duration": 0,
            "prompt_eval_count": embedding.result.prompt_tokens,
        }

    def chat(self, req: ChatRequest) -> OllamaAnswer:
        prepared = self.completions.prepare(openai_request(req.model, req.messages, req))
        return OllamaAnswer(self.completions, prepared, req.model, generate=False)

    def generate(self, req: GenerateRequest) -> OllamaAnswer:
        if req.images:
            raise InvalidRequest("images: the models served here take text only", param="images")
        if req.suffix:
            raise InvalidRequest(
                "suffix (fill-in-the-middle) is not supported by the models served here", param="suffix"
            )
        messages = ([Message(role="system", content=req.system)] if req.system else []) + [
            Message(role="user", content=req.prompt)
        ]
        prepared = self.completions.prepare(openai_request(req.model, messages, req))
        return OllamaAnswer(self.completions, prepared, req.model, generate=True)

    def handle(self, name: str) -> ModelHandle:
        try:
            return self.registry.get(ollama.entry_name(name))
        except NotFound:
            raise NotFound(f"model '{name}' not found", param="model") from None

    def chat_handle(self, name: str) -> ModelHandle:
        """A chat model (Ollama's 404 for an unknown name, 400 for an embedding model)."""
        return self.registry.chat(self.handle(name).name)

    def tags(self) -> dict[str, Any]:
        return {"models": [self._listing(h) for h in self.registry.handles.values()]}

    def ps(self) -> dict[str, Any]:
        loaded = [h for h in self.registry.handles.values() if h.provider.in_process and h.state == "ready"]
        return {
            "models": [
                {**self._listing(h), "expires_at": "0001-01-01T00:00:00Z", "size_vram": 0, "context_length": h.window}
                for h in loaded
            ]
        }

    def show(self, name: str) -> dict[str, Any]:
        handle = self.handle(name)
        details = self._details(handle)
        capabilities = ["embedding"] if handle.spec.kind == "embedding" else ["completion", "tools"]
        return {
            "modelfile": f"# Served by Slipway from its models file (entry {handle.name!r}, provider {handle.spec.provider})",
            "parameters": "",
            "template": "",
            "details": details,
            "model_info": {
                "general.architecture": details["family"],
                "general.basename": handle.name,
                f"{details['family']}.context_length": handle.window,
            },
            "capabilities": capabilities,
            "modified_at": ollama.timestamp(),
        }

    def _details(self, handle: ModelHandle) -> dict[str, Any]:
        local = handle.provider.in_process
        family = "llama" if local else handle.spec.provider
        return {
            "parent_model": "",
            "format": "gguf" if local else handle.spec.provider,
            "family": family,
            "families": [family],
            "parameter_size": "135M" if local and handle.spec.path is None else "",
            "quantization_level": "Q4_1" if local and handle.spec.path is None else "",
        }

    def _listing(self, handle: ModelHandle) -> dict[str, Any]:
        name = ollama.model_name(handle.name)
        return {
            "name": name,
            "model": name,
            "modified_at": ollama.timestamp(),
            "size": 0,
            "digest": "",
            "details": self._details(handle),
        }
