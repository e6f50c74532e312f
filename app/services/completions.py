"""The OpenAI Chat Completions endpoint's work: validate, build messages, generate, shape output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from app.core.errors import APIError, InvalidRequest, PayloadTooLarge
from app.core.sampling import Sampling
from app.protocol import openai as protocol
from app.protocol.openai import ChatCompletionRequest, ChatMessage
from app.providers.registry import ModelHandle
from app.services.events import Delta, Finished, StreamStarted
from app.services.first_event import FirstEvent
from app.services.generation import Generator, collect


def to_langchain(messages: list[ChatMessage], system_prompt: str | None) -> list[BaseMessage]:
    """OpenAI messages to LangChain's; the model entry's system prompt applies when the client sends none."""
    out: list[BaseMessage] = []
    if system_prompt and not any(m.role in ("system", "developer") for m in messages):
        out.append(SystemMessage(system_prompt))
    for m in messages:
        if m.role in ("system", "developer"):
            out.append(SystemMessage(m.text))
        elif m.role == "user":
            out.append(HumanMessage(m.text))
        elif m.role == "assistant":
            out.append(AIMessage(m.text))
        else:
            out.append(ToolMessage(m.text, tool_call_id=str((m.model_extra or {}).get("tool_call_id", ""))))
    return out


@dataclass
class Prepared:
    """A request checked against its model's limits, as the messages and parameters to generate."""

    req: ChatCompletionRequest
    handle: ModelHandle
    messages: list[BaseMessage]
    params: Sampling


class Completions:
    """Chat completions on the service's generator: `prepare` (400s before any work), then
    `complete` (one JSON body) or `stream` (a `ChatStream`)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def prepare(self, req: ChatCompletionRequest) -> Prepared:
        return prepare(self.generator, req)

    async def complete(self, prepared: Prepared) -> tuple[dict[str, Any], Finished]:
        events = self.generator.generate(prepared.req.model, prepared.messages, prepared.params)
        text, finished = await collect(events)
        body = protocol.completion(
            protocol.completion_id(),
            protocol.now(),
            finished.model,
            text,
            _openai_finish(finished.finish_reason),
            finished.usage.as_dict(),
        )
        return body, finished

    def stream(self, prepared: Prepared) -> ChatStream:
        return ChatStream(self.generator, prepared)


def prepare(generator: Generator, req: ChatCompletionRequest) -> Prepared:
    handle = generator.registry.get(req.model)
    refused = req.unsupported()
    if refused:
        field, why = refused
        raise InvalidRequest(why, param=field, code="unsupported_parameter")
    spec = handle.spec
    if spec.max_messages and len(req.messages) > spec.max_messages:
        raise InvalidRequest(
            f"at most {spec.max_messages} messages per request for model {spec.name!r}", param="messages"
        )
    if spec.max_prompt_chars:
        size = sum(len(m.text) for m in req.messages)
        if size > spec.max_prompt_chars:
            raise PayloadTooLarge(
                f"the prompt is {size} characters; model {spec.name!r} takes at most {spec.max_prompt_chars}",
                param="messages",
            )
    if spec.max_tokens_cap and req.requested_max_tokens and req.requested_max_tokens > spec.max_tokens_cap:
        raise InvalidRequest(f"max_tokens is at most {spec.max_tokens_cap} for model {spec.name!r}", param="max_tokens")
    messages = to_langchain(req.messages, spec.system_prompt)
    return Prepared(req=req, handle=handle, messages=messages, params=req.sampling())


def _openai_finish(reason: str) -> str:
    return "stop" if reason == "cancelled" else reason


def _sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ChatStream:
    """An OpenAI SSE stream: role chunk, content deltas, finish chunk, optional usage chunk, [DONE].

    `first()` pulls the first event before headers are sent (bounded by the ping interval) so the
    `X-Slipway-Model` header can name the model that really answers, fallbacks included.
    """

    def __init__(self, generator: Generator, prepared: Prepared) -> None:
        self.req = prepared.req
        self.events = generator.generate(prepared.req.model, prepared.messages, prepared.params)
        self._events = FirstEvent(self.events)
        self.cid = protocol.completion_id()
        self.created = protocol.now()
        self.model = prepared.handle.name
        self.finished: Finished | None = None
        self._body_started = False

    async def first(self, wait_s: float) -> None:
        """Raises the APIError of a request that fails before any token (so it gets a real status)."""
        await self._events.wait(wait_s)
        if self._events.first is not None:
            self.model = self._events.first.model

    async def body(self) -> AsyncIterator[bytes]:
        self._body_started = True
        role_sent = False
        try:
            async for event in self._events:
                self.model = event.model
                if not role_sent:
                    role_sent = True
                    yield _sse(protocol.chunk(self.cid, self.created, self.model, {"role": "assistant", "content": ""}))
                if isinstance(event, Delta):
                    yield _sse(protocol.chunk(self.cid, self.created, self.model, {"content": event.text}))
                else:
                    self.finished = event
                    yield _sse(
                        protocol.chunk(self.cid, self.created, self.model, {}, _openai_finish(event.finish_reason))
                    )
                    if self.req.include_usage:
                        usage_chunk = protocol.chunk(self.cid, self.created, self.model, None)
                        usage_chunk["usage"] = event.usage.as_dict()
                        yield _sse(usage_chunk)
        except StreamStarted as exc:
            yield _sse(exc.error.to_dict())
        except APIError as exc:
            yield _sse(exc.to_dict())
        finally:
            await self.events.aclose()
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        """The client left. Before the body started, stop generation here; once `body()` runs, its own
        `finally` closes the events when the response task is cancelled (closing them from here too
        raced it: "aclose(): asynchronous generator is already running", logged with a traceback)."""
        await self._events.cancel()
        if not self._body_started:
            await self.events.aclose()
