"""OpenAI Chat Completions request and response shapes (the client contract).

Field order and names mirror OpenAI's. Fields a client sends with their default values are accepted;
asking for something the service cannot do is refused by `unsupported()` with the field named,
never silently ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.output import OutputSpec, ToolSpec
from app.core.sampling import MAX_STOP_SEQUENCES, MaxTokens, Sampling, Seed, Temperature, TopP


class OpenAIBaseModel(BaseModel):
    # Unknown fields are tolerated (clients add their own); what matters is refused explicitly.
    model_config = ConfigDict(extra="allow")


class TextPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str


FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


class FunctionCall(OpenAIBaseModel):
    name: str
    #: The arguments as a JSON text (OpenAI's wire format), not an object.
    arguments: str = "{}"


class ToolCall(OpenAIBaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(OpenAIBaseModel):
    #: `function` is the legacy role of a function's result (`functions` API), read as `tool`.
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    #: The legacy form of one tool call on an assistant message.
    function_call: FunctionCall | None = None

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
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs `tool_call_id`: the id of the call it answers")
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


class JSONSchemaFormat(OpenAIBaseModel):
    name: str = Field(default="response", pattern=FUNCTION_NAME)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=lambda: {"type": "object"}, alias="schema")
    strict: bool | None = None


class ResponseFormat(OpenAIBaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs `json_schema` with a `schema`")
        return self


class FunctionDefinition(OpenAIBaseModel):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(OpenAIBaseModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(OpenAIBaseModel):
    name: str


class NamedToolChoice(OpenAIBaseModel):
    type: Literal["function"]
    function: NamedFunction


#: Choices per request (`n`): generated one after the other, each counted in `usage`.
MAX_CHOICES = 8
#: Fields accepted only with these values (anything else asks for what is not done here).
HARMLESS = {"service_tier": (None, "auto", "default"), "store": (None, False)}
#: Fields refused whatever their value, with why.
NOT_DONE = {
    "audio": "audio output is not supported: the models served here produce text only",
    "web_search_options": "web search is not supported by this service",
    "prediction": "predicted outputs are not supported by this service",
    "reasoning_effort": "the models served here do not reason before answering; leave reasoning_effort out",
}


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
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    modalities: list[str] | None = None
    #: Legacy (`functions` API): read as `tools` and `tool_choice`.
    functions: list[FunctionDefinition] | None = None
    function_call: Literal["none", "auto"] | NamedFunction | None = None

    @model_validator(mode="after")
    def _legacy_functions(self) -> ChatCompletionRequest:
        """Old clients send `functions`/`function_call`: the same thing as `tools`/`tool_choice`."""
        if self.functions is not None:
            if self.tools is not None:
                raise ValueError("send `tools` or the legacy `functions`, not both")
            self.tools = [Tool(type="function", function=f) for f in self.functions]
        if self.function_call is not None:
            if self.tool_choice is not None:
                raise ValueError("send `tool_choice` or the legacy `function_call`, not both")
            call = self.function_call
            self.tool_choice = (
                call
                if isinstance(call, str)
                else NamedToolChoice(type="function", function=NamedFunction(name=call.name))
            )
        return self

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
        if (self.n or 1) > MAX_CHOICES:
            return "n", f"n is at most {MAX_CHOICES} here"
        extra = self.model_extra or {}
        for name, why in NOT_DONE.items():
            if extra.get(name) is not None:
                return name, why
        for name, allowed in HARMLESS.items():
            if extra.get(name) not in allowed:
                accepted = " or ".join(json.dumps(v) for v in allowed[1:])
                return (
                    name,
                    f"{name} {json.dumps(extra[name])} is not supported by this service: leave it out or send {accepted}",
                )
        if self.modalities and any(m != "text" for m in self.modalities):
            return "modalities", 'the models served here produce text only: modalities must be ["text"]'
        if isinstance(self.tool_choice, NamedToolChoice) and not any(
            t.function.name == self.tool_choice.function.name for t in self.tools or []
        ):
            return "tool_choice", f"tool_choice names {self.tool_choice.function.name!r}, which is not in `tools`"
        if self.tool_choice == "required" and not self.tools:
            return "tool_choice", "tool_choice 'required' needs `tools`"
        if self.tools and self.response_format is not None and self.response_format.type != "text":
            return "response_format", "send either tools or a JSON response_format, not both"
        if self.top_logprobs is not None and not self.logprobs:
            return "top_logprobs", "top_logprobs needs logprobs: true"
        if self.logit_bias:
            return "logit_bias", "logit_bias is not supported"
        return None

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def output(self) -> OutputSpec:
        """What shape the answer must take (JSON, a schema, tool calls)."""
        tools = tuple(
            ToolSpec(name=t.function.name, description=t.function.description, parameters=t.function.parameters)
            for t in self.tools or []
        )
        choice = self.tool_choice
        tool_choice = choice.function.name if isinstance(choice, NamedToolChoice) else choice or "auto"
        fmt = self.response_format
        schema = fmt.json_schema if fmt is not None and fmt.type == "json_schema" else None
        return OutputSpec(
            json_schema=schema.schema_ if schema is not None else None,
            schema_name=schema.name if schema is not None else "response",
            json_object=fmt is not None and fmt.type == "json_object",
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=self.parallel_tool_calls is not False,
            logprobs=(self.top_logprobs or 0) if self.logprobs else None,
        )

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


class CompletionRequest(OpenAIBaseModel):
    """The legacy Completions API's request: a prompt instead of messages (answered by a chat model)."""

    model: str | None = None
    prompt: str | list[str] = Field(description="One prompt (a list holding one string is accepted).")
    max_tokens: MaxTokens = 16  # the legacy API's own default
    temperature: Temperature = None
    top_p: TopP = None
    n: int | None = Field(default=1, ge=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: Seed = None
    user: str | None = None
    echo: bool | None = False
    suffix: str | None = None
    best_of: int | None = None
    logprobs: int | None = None

    @model_validator(mode="after")
    def _one_prompt(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and len(self.prompt) != 1:
            raise ValueError("send one prompt per request (a list holding one string is accepted)")
        if self.echo:
            raise ValueError("echo is not supported: the prompt is not repeated in the answer")
        if self.suffix:
            raise ValueError("suffix (fill-in-the-middle) is not supported by the models served here")
        if self.best_of not in (None, 1):
            raise ValueError("best_of is not supported: ask for n choices instead")
        if self.logprobs is not None:
            raise ValueError("logprobs on the legacy Completions API are not supported: use chat completions")
        return self

    @property
    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


#: Inputs per embeddings request (OpenAI's own limit).
MAX_EMBEDDING_INPUTS = 2048


class EmbeddingRequest(OpenAIBaseModel):
    model: str | None = Field(default=None, description="An embedding model of GET /v1/models; default: the first.")
    input: str | list[str] | list[int] | list[list[int]] = Field(description="A text or a list of texts.")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=65536)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("input needs at least one text")
            if not all(isinstance(item, str) for item in value):
                raise ValueError(
                    "token arrays are not accepted here: send the text itself (a string or a list of strings)"
                )
            if len(value) > MAX_EMBEDDING_INPUTS:
                raise ValueError(f"at most {MAX_EMBEDDING_INPUTS} inputs per request")
        texts = [value] if isinstance(value, str) else value
        if any(text == "" for text in texts):
            raise ValueError("an input is an empty string: every input needs some text")
        return value

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)  # type: ignore[arg-type]


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    index: int = 0,
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk`; `delta=None` gives the usage-only chunk with `choices: []`."""
    probs = {"content": logprobs, "refusal": None} if logprobs is not None else None
    choices = (
        [] if delta is None else [{"index": index, "delta": delta, "logprobs": probs, "finish_reason": finish_reason}]
    )
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def choice(
    index: int,
    text: str,
    finish_reason: str,
    tool_calls: list[dict[str, Any]] | None = None,
    legacy: bool = False,
    logprobs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One choice of a `chat.completion`; with tool calls, `content` is null unless the model also
    wrote text. `legacy`: the request used `functions`, so the call is answered as `function_call`."""
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if tool_calls else ""), "refusal": None}
    if tool_calls and legacy:
        message["function_call"] = tool_calls[0]["function"]
    elif tool_calls:
        message["tool_calls"] = tool_calls
    probs = {"content": logprobs, "refusal": None} if logprobs is not None else None
    return {"index": index, "message": message, "logprobs": probs, "finish_reason": finish_reason}


def completion(
    cid: str, created: int, model: str, choices: list[dict[str, Any]], usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def model_object(name: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by}
