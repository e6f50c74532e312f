"""OpenAI Responses API shapes (`/v1/responses`): the request, its input items, the response object.

Input items are checked here and normalised to the stored form (each with an id, as
`GET /v1/responses/{id}/input_items` lists them); the service turns them into chat messages. As for
chat completions, asking for what the service cannot do is refused with the field named.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.sampling import MaxTokens, Temperature, TopP
from app.protocol.openai import FUNCTION_NAME, HARMLESS


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionTool(_Model):
    """A Responses function tool: flat (`name` beside `type`), unlike Chat Completions' nested one."""

    type: Literal["function"]
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(_Model):
    type: Literal["function"]
    name: str


class TextFormat(_Model):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str = Field(default="response", pattern=FUNCTION_NAME)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> TextFormat:
        if self.type == "json_schema" and self.schema_ is None:
            raise ValueError("text.format of type json_schema needs a `schema`")
        return self


class TextParam(_Model):
    format: TextFormat = Field(default_factory=TextFormat)


#: Fields refused whatever their value, with why.
NOT_DONE = {
    "conversation": "the Conversations API is not provided here: continue with previous_response_id",
    "prompt": "stored prompt templates are not supported by this service",
    "background": "background responses are not supported: stream instead",
}
#: `include` values accepted (no other output is produced here to include).
INCLUDABLE = {"reasoning.encrypted_content"}


class ResponseCreateRequest(_Model):
    model: str | None = Field(default=None, description="A name from GET /v1/models; default: the first.")
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: MaxTokens = None
    temperature: Temperature = None
    top_p: TopP = None
    stream: bool | None = False
    store: bool | None = True
    previous_response_id: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    truncation: Literal["disabled"] | None = None
    include: list[str] | None = None

    @model_validator(mode="after")
    def _input_given(self) -> ResponseCreateRequest:
        if self.input == [] or self.input == "":
            raise ValueError("input needs a string or at least one item")
        return self

    def unsupported(self) -> tuple[str, str] | None:
        extra = self.model_extra or {}
        for name, why in NOT_DONE.items():
            if extra.get(name) not in (None, False):
                return name, why
        reasoning = extra.get("reasoning")
        if isinstance(reasoning, dict) and reasoning.get("effort") not in (None, "none"):
            return "reasoning", "the models served here do not reason before answering; leave reasoning out"
        if extra.get("service_tier") not in HARMLESS["service_tier"]:
            return "service_tier", "service_tier is not supported by this service: leave it out or send 'auto'"
        if extra.get("top_logprobs"):
            return "top_logprobs", "log probabilities are not returned on the Responses API: use chat completions"
        for value in self.include or []:
            if value not in INCLUDABLE:
                return "include", f"include {value!r} is not supported by this service"
        if self.tool_choice == "required" and not self.tools:
            return "tool_choice", "tool_choice 'required' needs `tools`"
        if isinstance(self.tool_choice, NamedFunction) and not any(
            t.name == self.tool_choice.name for t in self.tools or []
        ):
            return "tool_choice", f"tool_choice names {self.tool_choice.name!r}, which is not in `tools`"
        return None

    def chat_fields(self) -> dict[str, Any]:
        """The equivalent Chat Completions request's fields, messages aside."""
        fields: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_completion_tokens": self.max_output_tokens,
            "parallel_tool_calls": self.parallel_tool_calls,
            "user": self.user,
        }
        if self.tools:
            fields["tools"] = [
                {
                    "type": "function",
                    "function": t.model_dump(
                        include={"name", "description", "parameters", "strict"}, exclude_none=True
                    ),
                }
                for t in self.tools
            ]
        if isinstance(self.tool_choice, NamedFunction):
            fields["tool_choice"] = {"type": "function", "function": {"name": self.tool_choice.name}}
        elif self.tool_choice is not None:
            fields["tool_choice"] = self.tool_choice
        fmt = self.text.format if self.text is not None else None
        if fmt is not None and fmt.type == "json_schema":
            schema = {"name": fmt.name, "schema": fmt.schema_, "strict": fmt.strict, "description": fmt.description}
            fields["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif fmt is not None and fmt.type == "json_object":
            fields["response_format"] = {"type": "json_object"}
        return {k: v for k, v in fields.items() if v is not None}


# -- input items --------------------------------------------------------------------------------------

ROLES = ("user", "system", "developer", "assistant")


class ItemError(ValueError):
    """An input item the service cannot read; `param` names it as the client sent it."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _own_id(item: dict[str, Any], prefix: str) -> str:
    """The client's item id when it sent a usable one (items replayed from an earlier output), else new."""
    given = item.get("id")
    return given if isinstance(given, str) and 0 < len(given) <= 128 else new_id(prefix)


def input_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's `input` as stored items (messages, function calls and their outputs), ids added."""
    if isinstance(value, str):
        return [_message("user", value)]
    items = []
    for index, item in enumerate(value):
        kind = item.get("type", "message")
        where = f"input[{index}]"
        if kind == "message":
            items.append(_message_item(item, where))
        elif kind == "function_call":
            items.append(_function_call(item, where))
        elif kind == "function_call_output":
            items.append(_function_output(item, where))
        elif kind == "reasoning":
            continue  # no reasoning is produced here; a client replaying another model's is not refused
        else:
            raise ItemError(f"input items of type {kind!r} are not supported: send messages and function calls", where)
    if not items:
        raise ItemError("input needs at least one message or function call", "input")
    return items


def _message(role: str, text: str, item_id: str | None = None) -> dict[str, Any]:
    if role == "assistant":
        part: dict[str, Any] = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    else:
        part = {"type": "input_text", "text": text}
    return {"id": item_id or new_id("msg"), "type": "message", "role": role, "status": "completed", "content": [part]}


def _message_item(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ROLES:
        raise ItemError(f"a message's role is one of {', '.join(ROLES)}", f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return _message(role, content, _own_id(item, "msg"))
    if not isinstance(content, list) or not content:
        raise ItemError("a message's content is a string or a list of text parts", f"{where}.content")
    texts = []
    for position, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text", "text") or not isinstance(part.get("text"), str):
            raise ItemError(
                f"content part of type {kind!r}: the models served here take text only (input_text parts)",
                f"{where}.content[{position}]",
            )
        texts.append(part["text"])
    return _message(role, "".join(texts), _own_id(item, "msg"))


def _function_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    for field in ("call_id", "name", "arguments"):
        if not isinstance(item.get(field), str):
            raise ItemError(f"a function_call item needs `{field}` (a string)", f"{where}.{field}")
    try:
        args = json.loads(item["arguments"] or "{}")
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise ItemError("a function_call's arguments are a JSON object as text", f"{where}.arguments")
    return {
        "id": _own_id(item, "fc"),
        "type": "function_call",
        "call_id": item["call_id"],
        "name": item["name"],
        "arguments": item["arguments"],
        "status": "completed",
    }


def _function_output(item: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(item.get("call_id"), str):
        raise ItemError("a function_call_output item needs `call_id`: the call it answers", f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, list):  # text parts
        output = "".join(p.get("text", "") for p in output if isinstance(p, dict))
    if not isinstance(output, str):
        raise ItemError("a function_call_output's output is a string", f"{where}.output")
    return {
        "id": _own_id(item, "fco"),
        "type": "function_call_output",
        "call_id": item["call_id"],
        "output": output,
        "status": "completed",
    }


# -- the response object ------------------------------------------------------------------------------


def output_message(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status != "in_progress" else []
    )
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def function_call_item(item_id: str, call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call["id"],
        "name": call["function"]["name"],
        "arguments": call["function"]["arguments"],
        "status": status,
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def response_object(
    req: ResponseCreateRequest,
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage_: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
    incomplete: str | None = None,
) -> dict[str, Any]:
    """The `response` object as OpenAI's schema defines it, echoing the request's parameters."""
    text_format: dict[str, Any] = {"type": "text"}
    fmt = req.text.format if req.text is not None else None
    if fmt is not None and fmt.type != "text":
        text_format = fmt.model_dump(by_alias=True, exclude_none=True)
    tools = [
        {**t.model_dump(exclude_none=True), "strict": t.strict, "parameters": t.parameters} for t in req.tools or []
    ]
    choice = req.tool_choice
    output_text = "".join(part["text"] for item in output if item["type"] == "message" for part in item["content"])
    out: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": int(time.time()) if status == "completed" else None,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "model": model,
        "output": output,
        "output_text": output_text,
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": req.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": req.store is not False,
        #: As sent: null means the model entry's default was used (it differs from OpenAI's 1.0).
        "temperature": req.temperature,
        "text": {"format": text_format},
        "tool_choice": choice.model_dump() if isinstance(choice, NamedFunction) else choice or "auto",
        "tools": tools,
        "top_p": req.top_p,
        "truncation": "disabled",
        "metadata": req.metadata or {},
    }
    # The schema types `usage` and `user` as objects/strings, not null: absent until known.
    if usage_ is not None:
        out["usage"] = usage_
    if req.user is not None:
        out["user"] = req.user
    return out
