"""The OpenAI Chat Completions endpoint's work: validate, build messages, generate, shape output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from app import protocol
from app.core.errors import APIError, InvalidRequest, PayloadTooLarge
from app.protocol import ChatCompletionRequest, ChatMessage
from app.providers.registry import ModelHandle, ModelRegistry
from app.services.first_event import FirstEvent
from app.services.generation import Delta, Finished, GenParams, StreamStarted, collect, generate


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
    handle: ModelHandle
    messages: list[BaseMessage]
    params: GenParams


def prepare(registry: ModelRegistry, req: ChatCompletionRequest) -> Prepared:
    handle = registry.get(req.model)
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
    params = GenParams(
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.requested_max_tokens,
        stop=req.stop,  # type: ignore[arg-type]  # normalised to a list by the validator
        seed=req.seed,
    )
    return Prepared(handle=handle, messages=to_langchain(req.messages, spec.system_prompt), params=params)


async def complete(registry: ModelRegistry, req: ChatCompletionRequest, prepared: Prepared) -> tuple[dict, Finished]:
    text, finished = await collect(generate(registry, req.model, prepared.messages, prepared.params, **hooks(registry)))
    body = protocol.completion(
        protocol.completion_id(),
        protocol.now(),
        finished.model,
        text,
        _openai_finish(finished.finish_reason),
        finished.usage.as_dict(),
    )
    return body, finished


def _openai_finish(reason: str) -> str:
    return "stop" if reason == "cancelled" else reason


def hooks(registry: ModelRegistry) -> dict[str, object]:
    """Metrics callbacks for retries and fallbacks, if the app installed any."""
    return getattr(registry, "generation_hooks", {})


def _sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ChatStream:
    """An OpenAI SSE stream: role chunk, content deltas, finish chunk, optional usage chunk, [DONE].

    `first()` pulls the first event before headers are sent (bounded by the ping interval) so the
    `X-Slipway-Model` header can name the model that really answers, fallbacks included.
    """

    def __init__(self, registry: ModelRegistry, req: ChatCompletionRequest, prepared: Prepared) -> None:
        self.req = req
        self.events = generate(registry, req.model, prepared.messages, prepared.params, **hooks(registry))
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
