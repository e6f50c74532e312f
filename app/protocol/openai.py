"""OpenAI Chat Completions request and response shapes (the client contract).

Field order and names mirror OpenAI's. Fields a client sends with their default values are accepted;
asking for something the service cannot do is refused by `unsupported()` with the field named,
never silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.sampling import MAX_STOP_SEQUENCES, MaxTokens, Sampling, Seed, Temperature, TopP


class OpenAIBaseModel(BaseModel):
    # Unknown fields are tolerated (clients add their own); what matters is refused explicitly.
    model_config = ConfigDict(extra="allow")


class TextPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        """Say plainly that images and audio are not taken (pydantic's own message, 'Input should be a
        valid string', misled clients sending an image_url part)."""
        if isinstance(value, list):
            for index, part in enumerate(value):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in (None, "text"):
                    raise ValueError(f"content part {index} is of type {kind!r}: the models served here take text only")
        return value

    @model_validator(mode="after")
    def _content_required(self) -> ChatMessage:
        """OpenAI requires content on every message but the assistant's (which may carry tool calls)."""
        if self.role != "assistant" and (self.content is None or self.content == []):
            raise ValueError(f"a {self.role} message needs content: a string, or at least one text part")
        return self

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(OpenAIBaseModel):
    include_usage: bool | None = False


class ResponseFormat(OpenAIBaseModel):
    type: Literal["text", "json_object", "json_schema"]


class ChatCompletionRequest(OpenAIBaseModel):
    model: str | None = Field(default=None, description="A name from GET /v1/models; default: the first.")
    messages: list[ChatMessage] = Field(min_length=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: MaxTokens = None
    max_completion_tokens: MaxTokens = None
    n: int | None = Field(default=1, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: ResponseFormat | None = None
    seed: Seed = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: Temperature = None
    top_p: TopP = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        stops = [value] if isinstance(value, str) else value
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return stops

    def unsupported(self) -> tuple[str, str] | None:
        """The first field asking for a feature this service does not provide, with why."""
        if (self.n or 1) > 1:
            return "n", "n > 1 is not supported: ask for one choice per request"
        if self.tools:
            return "tools", "tool calls are not supported by this service"
        if self.tool_choice not in (None, "none", "auto"):
            return "tool_choice", "tool calls are not supported by this service"
        if self.response_format is not None and self.response_format.type != "text":
            return "response_format", f"response_format {self.response_format.type!r} is not supported"
        if self.logprobs:
            return "logprobs", "logprobs are not supported"
        if self.top_logprobs:
            return "top_logprobs", "logprobs are not supported"
        if self.logit_bias:
            return "logit_bias", "logit_bias is not supported"
        return None

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def sampling(self) -> Sampling:
        return Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.requested_max_tokens,
            stop=[self.stop] if isinstance(self.stop, str) else self.stop,  # a list after `_stop_list`
            seed=self.seed,
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def chunk(
    cid: str, created: int, model: str, delta: dict[str, Any] | None, finish_reason: str | None = None
) -> dict[str, Any]:
    """One `chat.completion.chunk`; `delta=None` gives the usage-only chunk with `choices: []`."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }


def completion(
    cid: str, created: int, model: str, text: str, finish_reason: str, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
    }


def model_object(name: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by}
