"""The OpenAI Responses API (`/v1/responses`) on the chat models, stateful where Ollama's is not.

A request becomes a Chat Completions request (`Completions.prepare`: the same limits, tools and
structured output); its answer is re-shaped as output items. With `store` (the default, as OpenAI's),
the response and its input items are kept in the database under the caller's identity, so
`previous_response_id` continues a conversation on any replica and after a restart: the chain of
stored responses (each one's input items, then its output) comes before the new input. A stored
response's `instructions` do not carry over, as OpenAI documents.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.errors import APIError, InvalidRequest, NotFound
from app.protocol import responses as protocol
from app.protocol.openai import ChatCompletionRequest
from app.protocol.responses import ItemError, ResponseCreateRequest, new_id
from app.services.completions import Completions, Prepared, check_json
from app.services.events import Delta, Event, Finished, StreamStarted
from app.services.first_event import FirstEvent
from app.services.tool_calls import ToolCalls
from app.storage import responses as store
from app.storage.db import Database

PAGE_MAX = 100


@dataclass
class PreparedResponse:
    req: ResponseCreateRequest
    identity: str
    items: list[dict[str, Any]]
    chat: Prepared
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def response(self, model: str, status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return protocol.response_object(
            self.req,
            response_id=self.id,
            created_at=self.created_at,
            model=model,
            status=status,
            output=output,
            **extra,
        )


def chat_messages(items: list[dict[str, Any]], instructions: str | None) -> list[dict[str, Any]]:
    """Stored items as Chat Completions messages: a turn's function calls join its assistant message."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    for item in items:
        kind = item["type"]
        if kind == "message":
            text = "".join(part["text"] for part in item["content"])
            messages.append({"role": item["role"], "content": text})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
    return messages


def _invalid(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "input"
    return InvalidRequest(f"Invalid value for '{where}': {first['msg']}", param="input")


def _not_found(response_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"Response with id {response_id!r} not found.", param=param)


class Responses:
    def __init__(
        self, completions: Completions, db: Database, gate: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.completions = completions
        self.db = db
        self.gate = gate

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        if self.gate is not None:
            await self.gate()
        async with self.db.transaction() as conn:
            yield conn

    async def prepare(self, req: ResponseCreateRequest, identity: str) -> PreparedResponse:
        refused = req.unsupported()
        if refused:
            raise InvalidRequest(refused[1], param=refused[0], code="unsupported_parameter")
        try:
            items = protocol.input_items(req.input)
        except ItemError as exc:
            raise InvalidRequest(str(exc), param=exc.param) from None
        history: list[dict[str, Any]] = []
        if req.previous_response_id is not None:
            async with self.transaction() as conn:
                chain = await store.chain(conn, identity=identity, response_id=req.previous_response_id)
            if chain is None:
                raise _not_found(req.previous_response_id, "previous_response_id")
            for stored in chain:
                history += stored.input_items + stored.body["output"]
        try:
            chat = ChatCompletionRequest.model_validate(
                {**req.chat_fields(), "messages": chat_messages(history + items, req.instructions)}
            )
        except ValidationError as exc:
            raise _invalid(exc) from None
        return PreparedResponse(req=req, identity=identity, items=items, chat=self.completions.prepare(chat))

    async def complete(self, prep: PreparedResponse) -> tuple[dict[str, Any], Finished]:
        body, finished = await self.completions.complete(prep.chat)
        choice = body["choices"][0]
        message = choice["message"]
        output = []
        if message.get("content") or not message.get("tool_calls"):
            output.append(protocol.output_message(new_id("msg"), message.get("content") or ""))
        output += [protocol.function_call_item(new_id("fc"), call) for call in message.get("tool_calls") or []]
        cut = choice["finish_reason"] == "length"
        obj = prep.response(
            body["model"],
            "incomplete" if cut else "completed",
            output,
            usage_=protocol.usage(body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]),
            incomplete="max_output_tokens" if cut else None,
        )
        await self.save(prep, obj)
        return obj, finished

    def stream(self, prep: PreparedResponse) -> ResponseStream:
        return ResponseStream(self, prep)

    async def save(self, prep: PreparedResponse, obj: dict[str, Any]) -> None:
        if prep.req.store is False:
            return
        async with self.transaction() as conn:
            await store.save(conn, identity=prep.identity, body=obj, input_items=prep.items)

    async def retrieve(self, identity: str, response_id: str) -> dict[str, Any]:
        async with self.transaction() as conn:
            stored = await store.get(conn, identity=identity, response_id=response_id)
        if stored is None:
            raise _not_found(response_id)
        return stored.body

    async def delete(self, identity: str, response_id: str) -> dict[str, Any]:
        async with self.transaction() as conn:
            gone = await store.remove(conn, identity=identity, response_id=response_id)
        if not gone:
            raise _not_found(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def input_items(
        self, identity: str, response_id: str, *, limit: int, order: str, after: str | None
    ) -> dict[str, Any]:
        """A page of the response's input items (newest first by default, as OpenAI's)."""
        async with self.transaction() as conn:
            stored = await store.get(conn, identity=identity, response_id=response_id)
        if stored is None:
            raise _not_found(response_id)
        items = stored.input_items if order == "asc" else stored.input_items[::-1]
        if after is not None:
            ids = [item["id"] for item in items]
            if after not in ids:
                raise InvalidRequest(f"No input item with id {after!r} in response {response_id!r}.", param="after")
            items = items[ids.index(after) + 1 :]
        page = items[: min(limit, PAGE_MAX)]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else "",
            "last_id": page[-1]["id"] if page else "",
            "has_more": len(items) > len(page),
        }


def _event(kind: str, sequence: int, **fields: Any) -> bytes:
    """One Responses stream event: `event:` names its type, as OpenAI's stream does."""
    payload = {"type": kind, "sequence_number": sequence, **fields}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class ResponseStream:
    """OpenAI's Responses event sequence over one generation: created, in_progress, then per output
    item `output_item.added`, its deltas and `output_item.done`, then completed (or incomplete when cut
    by max_output_tokens, or failed on an error after the first token)."""

    def __init__(self, service: Responses, prep: PreparedResponse) -> None:
        self.service = service
        self.prep = prep
        chat = prep.chat
        self.events: AsyncGenerator[Event, None] = service.completions.generator.generate(
            chat.req.model, chat.messages, chat.params, chat.output
        )
        self._events = FirstEvent(self.events)
        self.model = chat.handle.name
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.calls = ToolCalls()
        self.call_items: dict[int, int] = {}  #: tool call index -> output index
        self.open: int | None = None  #: output index of the item being streamed
        self.text: list[str] = []
        self._body_started = False

    async def first(self, wait_s: float) -> None:
        await self._events.wait(wait_s)
        if self._events.first is not None:
            self.model = self._events.first.model

    def _emit(self, kind: str, **fields: Any) -> bytes:
        event = _event(kind, self.sequence, **fields)
        self.sequence += 1
        return event

    async def body(self) -> AsyncIterator[bytes]:
        self._body_started = True
        yield self._emit("response.created", response=self.prep.response(self.model, "in_progress", []))
        yield self._emit("response.in_progress", response=self.prep.response(self.model, "in_progress", []))
        finished: Finished | None = None
        try:
            async for event in self._events:
                self.model = event.model
                if isinstance(event, Delta):
                    for chunk in self._delta(event):
                        yield chunk
                else:
                    finished = event
        except StreamStarted as exc:
            async for chunk in self._failed(exc.error):
                yield chunk
            return
        except APIError as exc:
            async for chunk in self._failed(exc):
                yield chunk
            return
        finally:
            await self.events.aclose()
        assert finished is not None
        for chunk in self._close():
            yield chunk
        if not self.output:  # nothing at all was generated: one empty message, as the JSON answer has
            for chunk in [*self._open_message(), *self._close()]:
                yield chunk
        cut = finished.finish_reason == "length"
        if not cut and not self.call_items:
            try:
                check_json("".join(self.text), self.prep.chat.output, self.model)
            except APIError as exc:
                async for chunk in self._failed(exc):
                    yield chunk
                return
        obj = self.prep.response(
            self.model,
            "incomplete" if cut else "completed",
            self.output,
            usage_=protocol.usage(finished.usage.prompt_tokens, finished.usage.completion_tokens),
            incomplete="max_output_tokens" if cut else None,
        )
        await self.service.save(self.prep, obj)
        yield self._emit("response.incomplete" if cut else "response.completed", response=obj)

    def _delta(self, event: Delta) -> list[bytes]:
        out: list[bytes] = []
        if event.text:
            if self.open is None or self.output[self.open]["type"] != "message":
                out += self._close()
                out += self._open_message()
            self.text.append(event.text)
            item = self.output[self.open]  # type: ignore[index]
            item["content"][0]["text"] += event.text
            out.append(
                self._emit(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=self.open,
                    content_index=0,
                    delta=event.text,
                    logprobs=[],
                )
            )
        for fragment in self.calls.add(event.tool_calls or []):
            index = fragment["index"]
            if index not in self.call_items:
                out += self._close()
                self.open = self.call_items[index] = len(self.output)
                call = {"id": fragment["id"], "function": {"name": fragment["function"]["name"], "arguments": ""}}
                item = protocol.function_call_item(new_id("fc"), call, status="in_progress")
                self.output.append(item)
                out.append(self._emit("response.output_item.added", output_index=self.open, item=item))
            position = self.call_items[index]
            arguments = fragment["function"].get("arguments") or ""
            if arguments:
                item = self.output[position]
                item["arguments"] += arguments
                out.append(
                    self._emit(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=position,
                        delta=arguments,
                    )
                )
        return out

    def _open_message(self) -> list[bytes]:
        self.open = len(self.output)
        item = protocol.output_message(new_id("msg"), "", status="in_progress")
        self.output.append(item)
        added = self._emit("response.output_item.added", output_index=self.open, item={**item, "content": []})
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        item["content"] = [part]
        return [
            added,
            self._emit(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self.open,
                content_index=0,
                part=dict(part),
            ),
        ]

    def _close(self, status: str = "completed") -> list[bytes]:
        """The open item's closing events."""
        if self.open is None:
            return []
        index, self.open = self.open, None
        item = self.output[index]
        item["status"] = status
        out = []
        if item["type"] == "message":
            part = item["content"][0]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out.append(self._emit("response.output_text.done", **common, text=part["text"], logprobs=[]))
            out.append(self._emit("response.content_part.done", **common, part=part))
        else:
            item["arguments"] = item["arguments"] or "{}"
            out.append(
                self._emit(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        out.append(self._emit("response.output_item.done", output_index=index, item=item))
        return out

    async def _failed(self, error: APIError) -> AsyncIterator[bytes]:
        """An error after the stream started: the open item ends incomplete, then `response.failed`
        (stored, so a client can see what was produced)."""
        for chunk in self._close("incomplete"):
            yield chunk
        code = "rate_limit_exceeded" if error.status_code == 429 else "server_error"
        obj = self.prep.response(
            self.model, "failed", self.output, error={"code": code, "message": error.public_message()}
        )
        with contextlib.suppress(APIError):
            await self.service.save(self.prep, obj)
        yield self._emit("response.failed", response=obj)

    async def aclose(self) -> None:
        await self._events.cancel()
        if not self._body_started:
            await self.events.aclose()
