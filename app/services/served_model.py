"""A LangChain chat model that runs on a served model through `generation.generate`.

Why: a chain served over HTTP must behave like a chat request on the same model: it waits for the
model's queue slot, obeys its timeouts, retries and falls back before the first token, and reports
which model answered and the tokens used. Wrapping `generate()` as a `BaseChatModel` gives chains all
of that without knowing it, and keeps the chain code identical in a notebook and in the service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import ToolCallChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from app.core.errors import PayloadTooLarge
from app.core.models_file import ModelSpec
from app.core.output import TEXT, OutputSpec, ToolSpec
from app.core.sampling import Sampling
from app.providers.base import chat_result
from app.services.events import Delta, Usage
from app.services.generation import Generator


@dataclass
class Outcome:
    """What the generations of one request came to: who answered, tokens used."""

    models: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reasons: list[str] = field(default_factory=list)

    @property
    def model(self) -> str | None:
        """The answering model; several (after fallbacks in a batch) are joined by commas."""
        names = list(dict.fromkeys(self.models))
        return ",".join(names) if names else None


class ServedChatModel(BaseChatModel):
    """`generate()` on a registry model, as a chat model (async only: the service runs on an event loop)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Generator
    model_name: str | None = None
    params: Sampling = Field(default_factory=Sampling)
    outcome: Outcome = Field(default_factory=Outcome)

    @property
    def _llm_type(self) -> str:
        return "slipway-served"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model_name}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("a served model runs on the service's event loop: use ainvoke/astream")

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError("a served model runs on the service's event loop: use ainvoke/astream")

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        params = self.params.model_copy(update={"stop": stop}) if stop else self.params
        self._check_size(messages)
        output = _output(kwargs)
        if output is not TEXT:
            self.generator.registry.get(self.model_name).provider.check_output(output, self._spec())
        answered = False
        async for event in self.generator.generate(self.model_name, messages, params, output):
            if not answered:
                answered = True
                self.outcome.models.append(event.model)
            if isinstance(event, Delta):
                # BaseChatModel.astream reports each chunk to callbacks itself.
                calls = [_call_chunk(c) for c in event.tool_calls or []]
                yield ChatGenerationChunk(message=AIMessageChunk(content=event.text, tool_call_chunks=calls))
                continue
            self.outcome.usage.prompt_tokens += event.usage.prompt_tokens
            self.outcome.usage.completion_tokens += event.usage.completion_tokens
            self.outcome.finish_reasons.append(event.finish_reason)
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata=UsageMetadata(
                        input_tokens=event.usage.prompt_tokens,
                        output_tokens=event.usage.completion_tokens,
                        total_tokens=event.usage.total_tokens,
                    ),
                    response_metadata={"finish_reason": event.finish_reason, "model_name": event.model},
                )
            )

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools for the served model's calls, on any provider (what `with_structured_output` uses)."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if isinstance(tool_choice, dict):
            tool_choice = tool_choice.get("function", {}).get("name") or "required"
        elif tool_choice in ("any", True):
            tool_choice = "required"
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _spec(self) -> ModelSpec:
        return self.generator.registry.get(self.model_name).spec

    def _check_size(self, messages: list[BaseMessage]) -> None:
        """The entry's `max_prompt_chars` holds for a chain's prompt as for a chat request's."""
        spec = self._spec()
        if spec.max_prompt_chars:
            size = sum(len(m.content if isinstance(m.content, str) else m.text) for m in messages)
            if size > spec.max_prompt_chars:
                raise PayloadTooLarge(
                    f"the prompt is {size} characters; model {spec.name!r} takes at most {spec.max_prompt_chars}",
                    param="input",
                )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        total: ChatGenerationChunk | None = None
        async for chunk in self._astream(messages, stop, run_manager, **kwargs):
            total = chunk if total is None else total + chunk
        assert total is not None  # generate() always ends with Finished
        return chat_result(total)


def _output(kwargs: dict[str, Any]) -> OutputSpec:
    """The shape `bind_tools` (or a `response_format` keyword) asked for, as an `OutputSpec`."""
    tools = tuple(
        ToolSpec(
            name=t["function"]["name"],
            description=t["function"].get("description"),
            parameters=t["function"].get("parameters"),
        )
        for t in kwargs.get("tools") or []
    )
    fmt = kwargs.get("response_format") or {}
    if not tools and not fmt:
        return TEXT
    schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
    return OutputSpec(
        json_schema=schema,
        json_object=fmt.get("type") == "json_object",
        tools=tools,
        tool_choice=kwargs.get("tool_choice") or "auto",
    )


def _call_chunk(fragment: dict[str, Any]) -> ToolCallChunk:
    """An OpenAI tool-call fragment as LangChain's tool-call chunk."""
    function = fragment.get("function") or {}
    return ToolCallChunk(
        name=function.get("name"), args=function.get("arguments"), id=fragment.get("id"), index=fragment.get("index")
    )
