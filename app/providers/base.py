"""What a provider is: one class that turns a models-file entry into a LangChain chat model and a
stream of pieces, and says what it knows about its models (default id, context window, owner).

A chain never knows which provider it runs on: it gets the LangChain chat model. `generate()` never
knows either: it reads `Piece`s from the entry's `Stream`, whatever the wire underneath (a LangChain
chat model by default; a provider may stream its upstream directly, as `openai` does).
Adding a provider is one new module with a `Provider` subclass and one line in `registry.PROVIDERS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

from app.core.config import Settings
from app.core.errors import APIError, InvalidRequest, ServiceUnavailable
from app.core.models_file import ModelSpec
from app.core.output import TEXT, OutputSpec
from app.providers.embedders import Embedder

#: Context window assumed for a remote model whose entry sets none (a common floor for today's models).
DEFAULT_REMOTE_WINDOW = 8192


@dataclass(slots=True)
class Piece:
    """One streamed chunk as generation reads it, whatever the provider: text (maybe empty), a finish
    reason, token counts when the upstream sent them."""

    text: str = ""
    finish_reason: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: Log probabilities of this piece's tokens (OpenAI's `logprobs.content` entries), when asked for.
    logprobs: list[dict[str, Any]] | None = None
    #: Tool-call fragments in OpenAI's delta format: `index`, and `id`, `type`, `function.name`,
    #: `function.arguments` (a piece of the JSON text) as they arrive.
    tool_calls: list[dict[str, Any]] | None = None


def tool_call_deltas(chunk: BaseMessage) -> list[dict[str, Any]] | None:
    """LangChain's tool-call chunks as OpenAI's streamed tool-call fragments."""
    fragments = getattr(chunk, "tool_call_chunks", None)
    if not fragments:
        return None
    out = []
    for position, fragment in enumerate(fragments):
        delta: dict[str, Any] = {"index": fragment.get("index") if fragment.get("index") is not None else position}
        if fragment.get("id"):
            delta["id"] = fragment["id"]
            delta["type"] = "function"
        function = {k: v for k, v in (("name", fragment.get("name")), ("arguments", fragment.get("args"))) if v}
        if function:
            delta["function"] = function
        out.append(delta)
    return out


def chat_result(total: ChatGenerationChunk | None) -> ChatResult:
    """Streamed chunks, added up, as the one message `ainvoke` returns (text, usage, metadata)."""
    if total is None:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
    chunk = total.message
    if isinstance(chunk, AIMessageChunk):
        message = AIMessage(
            content=chunk.content,
            usage_metadata=chunk.usage_metadata,
            response_metadata=chunk.response_metadata,
            id=chunk.id,
            tool_calls=chunk.tool_calls,
            invalid_tool_calls=chunk.invalid_tool_calls,
        )
    else:
        message = AIMessage(content=chunk.content, response_metadata=chunk.response_metadata, id=chunk.id)
    return ChatResult(generations=[ChatGeneration(message=message)])


class ProviderNotConfigured(ServiceUnavailable):
    """A model that cannot serve until the operator acts (missing key, missing file)."""

    code = "provider_not_configured"


class Stream(Protocol):
    """How `generate()` reads a model: pieces for the generic parameters (temperature, top_p,
    max_tokens, stop, seed) and the answer's shape (`OutputSpec`), and `aclose()` for what the stream
    pools (connections)."""

    def stream(
        self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec = TEXT
    ) -> AsyncIterator[Piece]: ...

    async def aclose(self) -> None: ...


class ChatModelStream:
    """The default `Stream`: the LangChain chat model's own `astream`, parameters renamed by the
    provider (`Provider.call_kwargs`)."""

    def __init__(self, provider: Provider, chat_model: BaseChatModel) -> None:
        self.provider = provider
        self.chat_model = chat_model

    async def stream(
        self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec = TEXT
    ) -> AsyncIterator[Piece]:
        model: Runnable[LanguageModelInput, BaseMessage] = self.chat_model
        if output.offers_tools:
            model = self.provider.bind_tools(self.chat_model, output)
        kwargs = {**self.provider.call_kwargs(params), **self.provider.output_kwargs(output)}
        chunks = model.astream(list(messages), **kwargs)
        try:
            async for chunk in chunks:
                usage: dict[str, Any] = dict(getattr(chunk, "usage_metadata", None) or {})
                metadata = chunk.response_metadata or {}
                yield Piece(
                    text=chunk.content if isinstance(chunk.content, str) else chunk.text,
                    finish_reason=metadata.get("finish_reason") or metadata.get("done_reason"),
                    prompt_tokens=usage.get("input_tokens"),
                    completion_tokens=usage.get("output_tokens"),
                    tool_calls=tool_call_deltas(chunk),
                    logprobs=(metadata.get("logprobs") or {}).get("content"),
                )
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # an async generator underneath

    async def aclose(self) -> None:
        return None


class Provider:
    """Subclass per provider; the class attributes describe its models to the rest of the service."""

    #: The models file's `provider:` value.
    name: ClassVar[str]
    #: `owned_by` in /v1/models.
    owned_by: ClassVar[str]
    #: The upstream model id when an entry names none (None: the entry's name).
    default_model: ClassVar[str | None] = None
    #: The context window when an entry sets none.
    context_window: ClassVar[int] = DEFAULT_REMOTE_WINDOW
    #: True when the model runs in this process and must load before the service is ready.
    in_process: ClassVar[bool] = False
    #: Generations at once when an entry sets no `concurrency`.
    concurrency: ClassVar[int] = 64
    #: Whether answers can carry token log probabilities (`logprobs`).
    has_logprobs: ClassVar[bool] = False
    #: Generic request parameter -> the chat model's call keyword (None: LangChain's own names).
    param_names: ClassVar[dict[str, str] | None] = None
    #: Whether entries of `kind: embedding` can name this provider (`embedder()`).
    embeds: ClassVar[bool] = False

    def check(self, spec: ModelSpec) -> None:
        """Refuse an entry this provider cannot serve (ValueError, shown with the entry's name)."""
        if spec.path is not None:
            raise ValueError("`path` is only for provider local")

    def upstream_model(self, spec: ModelSpec) -> str:
        return spec.model or self.default_model or spec.name

    def window(self, spec: ModelSpec) -> int:
        return spec.context_window or self.context_window

    def chat_model(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        """The LangChain chat model (cheap: no weights loaded, no connection made)."""
        raise NotImplementedError

    def embedder(self, spec: ModelSpec, settings: Settings) -> Embedder:
        """The embedding client of a `kind: embedding` entry (cheap: no connection is made)."""
        raise NotImplementedError

    def stream(self, spec: ModelSpec, settings: Settings, chat_model: BaseChatModel) -> Stream:
        """How `generate()` streams this entry; the chat model's `astream` unless overridden."""
        return ChatModelStream(self, chat_model)

    def call_kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.param_names is None:
            return params
        return {self.param_names[k]: v for k, v in params.items() if k in self.param_names and v is not None}

    def classify(self, exc: BaseException, spec: ModelSpec, settings: Settings) -> APIError | None:
        """A provider library's exception as an APIError (503/504/429...), or None if unknown."""
        return None

    # -- the answer's shape: JSON, a schema, tool calls ---------------------------------------------------

    def check_output(self, output: OutputSpec, spec: ModelSpec) -> None:
        """400 (naming the field) for a shape this provider cannot produce; before any work."""
        if output.logprobs is not None and not self.has_logprobs:
            raise InvalidRequest(
                f"logprobs are not available from model {spec.name!r} (provider {self.name}); "
                "they are from local and OpenAI-compatible models",
                param="logprobs",
                code="unsupported_parameter",
            )

    def bind_tools(self, chat_model: BaseChatModel, output: OutputSpec) -> Runnable[LanguageModelInput, BaseMessage]:
        """The chat model with the request's tools bound (LangChain's `bind_tools`, OpenAI's format)."""
        choice = output.tool_choice
        return chat_model.bind_tools(
            [t.openai() for t in output.tools], tool_choice=None if choice == "auto" else choice
        )

    def output_kwargs(self, output: OutputSpec) -> dict[str, Any]:
        """Call keywords that make the chat model answer in JSON (and in the schema, when one is given)."""
        return {}

    def setup_state(self, spec: ModelSpec, settings: Settings) -> str:
        """What `python -m app models` can tell without reaching the model (a key set, a file there)."""
        if spec.api_key_env:
            variable = spec.api_key_env
            return f"key in ${variable}" if settings.env_secret(variable) else f"MISSING ${variable}"
        return f"at {spec.base_url}" if spec.base_url else "configured"
