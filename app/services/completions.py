"""The OpenAI Chat Completions endpoint's work: validate, build messages, generate, shape output."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import orjson
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage

from app.core.errors import APIError, InvalidRequest, PayloadTooLarge, UpstreamFormatError
from app.core.output import OutputSpec
from app.core.sampling import Sampling
from app.protocol import openai as protocol
from app.protocol.openai import ChatCompletionRequest, ChatMessage
from app.providers.registry import ModelHandle
from app.services.events import Delta, Event, Finished, StreamStarted, Usage
from app.services.first_event import FirstEvent
from app.services.generation import Generator
from app.services.tool_calls import ToolCalls


def to_langchain(messages: list[ChatMessage], system_prompt: str | None) -> list[BaseMessage]:
    """OpenAI messages to LangChain's; the model entry's system prompt applies when the client sends none."""
    out: list[BaseMessage] = []
    if system_prompt and not any(m.role in ("system", "developer") for m in messages):
        out.append(SystemMessage(system_prompt))
    for index, m in enumerate(messages):
        if m.role in ("system", "developer"):
            out.append(SystemMessage(m.text))
        elif m.role == "user":
            out.append(HumanMessage(m.text))
        elif m.role == "assistant":
            out.append(AIMessage(m.text, tool_calls=_tool_calls(m, index)))
        elif m.role == "function":  # legacy: a function's result, answering the call named after it
            out.append(ToolMessage(m.text, tool_call_id=_legacy_id(m.name or "")))
        else:
            out.append(ToolMessage(m.text, tool_call_id=m.tool_call_id or ""))
    return out


def _tool_calls(message: ChatMessage, index: int) -> list[ToolCall]:
    calls = [(c.id, c.function) for c in message.tool_calls or []]
    if message.function_call is not None:
        calls.append((_legacy_id(message.function_call.name), message.function_call))
    out = []
    for position, (call_id, function) in enumerate(calls):
        try:
            args = json.loads(function.arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):
            raise InvalidRequest(
                f"the arguments of tool call {call_id!r} are not a JSON object",
                param=f"messages.{index}.tool_calls.{position}.function.arguments",
                code="invalid_value",
            )
        out.append(ToolCall(name=function.name, args=args, id=call_id))
    return out


def _legacy_id(name: str) -> str:
    """The legacy `functions` API has no call ids: a call and its result are matched by the name."""
    return f"call_{name}"


@dataclass
class _Answer:
    """One choice, whole."""

    text: str
    tool_calls: list[dict[str, Any]] | None
    finished: Finished
    logprobs: list[dict[str, Any]] | None


@dataclass
class Prepared:
    """A request checked against its model's limits, as the messages and parameters to generate."""

    req: ChatCompletionRequest
    handle: ModelHandle
    messages: list[BaseMessage]
    params: Sampling
    output: OutputSpec

    @property
    def legacy(self) -> bool:
        """The request used the legacy `functions`: calls are answered as `function_call`."""
        return self.req.functions is not None

    @property
    def n(self) -> int:
        return self.req.n or 1

    def params_for(self, index: int) -> Sampling:
        """Choice `index`'s sampling: with a seed, seed + index, so the choices differ reproducibly."""
        if index and self.params.seed is not None:
            return self.params.model_copy(update={"seed": self.params.seed + index})
        return self.params


class Completions:
    """Chat completions on the service's generator: `prepare` (400s before any work), then
    `complete` (one JSON body) or `stream` (a `ChatStream`)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def prepare(self, req: ChatCompletionRequest) -> Prepared:
        return prepare(self.generator, req)

    async def complete(self, prepared: Prepared) -> tuple[dict[str, Any], Finished]:
        """The `n` choices, generated one after the other; usage adds them up."""
        choices, usage, first = [], Usage(), None
        for index in range(prepared.n):
            answer = await self._choice(prepared, index)
            finished = answer.finished
            first = first or finished
            usage.prompt_tokens += finished.usage.prompt_tokens
            usage.completion_tokens += finished.usage.completion_tokens
            finish = _openai_finish(finished.finish_reason, bool(answer.tool_calls), prepared.legacy)
            choices.append(
                protocol.choice(index, answer.text, finish, answer.tool_calls, prepared.legacy, answer.logprobs)
            )
        assert first is not None
        body = protocol.completion(protocol.completion_id(), protocol.now(), first.model, choices, usage.as_dict())
        return body, first

    async def _choice(self, prepared: Prepared, index: int) -> _Answer:
        events = self.generator.generate(
            prepared.req.model, prepared.messages, prepared.params_for(index), prepared.output
        )
        parts: list[str] = []
        calls = ToolCalls()
        logprobs: list[dict[str, Any]] | None = [] if prepared.output.logprobs is not None else None
        finished: Finished | None = None
        try:
            async for event in events:
                if isinstance(event, Delta):
                    parts.append(event.text)
                    calls.add(event.tool_calls or [])
                    if logprobs is not None:
                        logprobs += event.logprobs or []
                else:
                    finished = event
        except StreamStarted as exc:  # nothing was sent yet: the same error as before the first token
            raise exc.error from None
        assert finished is not None
        answer = _Answer("".join(parts), calls.result(), finished, logprobs)
        if not answer.tool_calls and finished.finish_reason != "length":  # cut by max_tokens: as it is, as OpenAI does
            check_json(answer.text, prepared.output, finished.model)
        return answer

    def stream(self, prepared: Prepared) -> ChatStream:
        return ChatStream(self.generator, prepared)


def prepare(generator: Generator, req: ChatCompletionRequest) -> Prepared:
    handle = generator.registry.chat(req.model)
    refused = req.unsupported()
    if refused:
        field, why = refused
        raise InvalidRequest(why, param=field, code="unsupported_parameter")
    output = req.output()
    handle.provider.check_output(output, handle.spec)
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
    return Prepared(req=req, handle=handle, messages=messages, params=req.sampling(), output=output)


def _openai_finish(reason: str, called: bool = False, legacy: bool = False) -> str:
    """OpenAI's finish reasons: a stream cut short by the client ends `stop`; a turn that called
    tools ends `tool_calls` (Ollama and Gemini say `stop` there), `function_call` for legacy clients."""
    if called and reason in ("stop", "tool_calls"):
        return "function_call" if legacy else "tool_calls"
    return "stop" if reason in ("cancelled", "tool_calls") else reason


def check_json(text: str, output: OutputSpec, model: str) -> None:
    """An answer asked to be JSON (of a schema) that is not: 502 saying how, rather than a body a
    client's parser would fail on. The local model cannot fail this (a grammar); upstreams can."""
    if not output.wants_json:
        return
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UpstreamFormatError(f"model {model!r} answered with text that is not JSON ({exc})") from None
    if output.json_schema is not None:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(output.json_schema).iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            raise UpstreamFormatError(
                f"model {model!r} answered with JSON that does not match the schema at {where}: {error.message}"
            )


def _sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ChatStream:
    """An OpenAI SSE stream: role chunk, content deltas, finish chunk, optional usage chunk, [DONE].

    `first()` pulls the first event before headers are sent (bounded by the ping interval) so the
    `X-Slipway-Model` header can name the model that really answers, fallbacks included.
    """

    def __init__(self, generator: Generator, prepared: Prepared) -> None:
        self.generator = generator
        self.prepared = prepared
        self.req = prepared.req
        self.legacy = prepared.legacy
        self.events = self._generate(0)
        self._events = FirstEvent(self.events)
        self.calls = ToolCalls()
        self.usage = Usage()
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

    def _generate(self, index: int) -> AsyncGenerator[Event, None]:
        p = self.prepared
        return self.generator.generate(p.req.model, p.messages, p.params_for(index), p.output)

    async def body(self) -> AsyncIterator[bytes]:
        """Choice after choice (`n`), each with its `index`; one usage chunk for all of them."""
        self._body_started = True
        try:
            for index in range(self.prepared.n):
                if index:
                    self.events, self.calls = self._generate(index), ToolCalls()
                    self._events = FirstEvent(self.events)
                async for chunk in self._choice(index):
                    yield chunk
            if self.req.include_usage:
                usage_chunk = protocol.chunk(self.cid, self.created, self.model, None)
                usage_chunk["usage"] = self.usage.as_dict()
                yield _sse(usage_chunk)
        except StreamStarted as exc:
            yield _sse(exc.error.to_dict())
        except APIError as exc:
            yield _sse(exc.to_dict())
        finally:
            await self.events.aclose()
        yield b"data: [DONE]\n\n"

    async def _choice(self, index: int) -> AsyncIterator[bytes]:
        role_sent = False
        async for event in self._events:
            self.model = event.model
            if not role_sent:
                role_sent = True
                role = {"role": "assistant", "content": ""}
                yield _sse(protocol.chunk(self.cid, self.created, self.model, role, index=index))
            if isinstance(event, Delta):
                delta, probs = self._delta(event), self._logprobs(event)
                yield _sse(protocol.chunk(self.cid, self.created, self.model, delta, index=index, logprobs=probs))
            else:
                self.finished = event
                self.usage.prompt_tokens += event.usage.prompt_tokens
                self.usage.completion_tokens += event.usage.completion_tokens
                finish = _openai_finish(event.finish_reason, bool(self.calls.calls), self.legacy)
                yield _sse(protocol.chunk(self.cid, self.created, self.model, {}, finish, index=index))

    def _logprobs(self, event: Delta) -> list[dict[str, Any]] | None:
        return (event.logprobs or []) if self.prepared.output.logprobs is not None else None

    def _delta(self, event: Delta) -> dict[str, Any]:
        delta: dict[str, Any] = {"content": event.text} if event.text or not event.tool_calls else {}
        if event.tool_calls:
            fragments = self.calls.add(event.tool_calls)
            if self.legacy:  # one call, as `function_call` fragments
                delta["function_call"] = next((f["function"] for f in fragments if f["index"] == 0), {"arguments": ""})
            else:
                delta["tool_calls"] = fragments
        return delta

    async def aclose(self) -> None:
        """The client left. Before the body started, stop generation here; once `body()` runs, its own
        `finally` closes the events when the response task is cancelled (closing them from here too
        raced it: "aclose(): asynchronous generator is already running", logged with a traceback)."""
        await self._events.cancel()
        if not self._body_started:
            await self.events.aclose()
