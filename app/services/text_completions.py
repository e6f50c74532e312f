"""The legacy Completions API (`POST /v1/completions`) on the chat models: the prompt is sent as one
user message, and the chat answer is returned in the `text_completion` shape. Clients still post
there by default (LlamaIndex's `OpenAILike.complete()`, older SDK code)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import ValidationError

from app.core.errors import InvalidRequest
from app.protocol.openai import ChatCompletionRequest, CompletionRequest
from app.services.completions import ChatStream, Completions, Prepared
from app.services.events import Finished


def chat_request(req: CompletionRequest) -> ChatCompletionRequest:
    fields = req.model_dump(exclude={"prompt", "echo", "suffix", "best_of", "logprobs"}, exclude_none=True)
    try:
        return ChatCompletionRequest.model_validate({**fields, "messages": [{"role": "user", "content": req.text}]})
    except ValidationError as exc:  # a field the chat request refuses, named as the client sent it
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).replace("messages.0.content", "prompt") or "body"
        raise InvalidRequest(f"Invalid value for '{where}': {first['msg']}", param=where) from None


def _choice(choice: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": choice["message"]["content"] or "",
        "index": choice["index"],
        "logprobs": None,
        "finish_reason": choice["finish_reason"],
    }


def _id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


class TextCompletions:
    def __init__(self, completions: Completions) -> None:
        self.completions = completions

    def prepare(self, req: CompletionRequest) -> Prepared:
        return self.completions.prepare(chat_request(req))

    async def complete(self, prepared: Prepared) -> tuple[dict[str, Any], Finished]:
        body, finished = await self.completions.complete(prepared)
        text = {**body, "id": _id(), "object": "text_completion", "choices": [_choice(c) for c in body["choices"]]}
        return text, finished

    def stream(self, prepared: Prepared) -> TextStream:
        return TextStream(self.completions.stream(prepared))


class TextStream:
    """The chat stream's events re-shaped as `text_completion` chunks (same order, same [DONE])."""

    def __init__(self, chat: ChatStream) -> None:
        self.chat = chat
        self.id = _id()

    @property
    def model(self) -> str:
        return self.chat.model

    async def first(self, wait_s: float) -> None:
        await self.chat.first(wait_s)

    async def body(self) -> AsyncIterator[bytes]:
        async for event in self.chat.body():
            data = event.removeprefix(b"data: ").strip()
            if data == b"[DONE]":
                yield event
                continue
            chunk = orjson.loads(data)
            if "error" in chunk:
                yield event
                continue
            choices = []
            for choice in chunk["choices"]:
                delta = choice["delta"]
                if "role" in delta and not choice["finish_reason"]:
                    continue  # the chat stream's opening role chunk has no text
                choices.append(
                    {
                        "text": delta.get("content") or "",
                        "index": choice["index"],
                        "logprobs": None,
                        "finish_reason": choice["finish_reason"],
                    }
                )
            if choices or chunk.get("usage"):
                out = {**chunk, "id": self.id, "object": "text_completion", "choices": choices}
                yield b"data: " + orjson.dumps(out) + b"\n\n"

    async def aclose(self) -> None:
        await self.chat.aclose()
