"""LangChain (LCEL) chains as plain factories: `chain(model) -> Runnable`, no HTTP, no database.

A prototype calls them on any chat model (`summarize(build_chat_model(spec)).invoke({...})`); the
service serves every chain in `CHAINS` over HTTP (`/v1/chains/...`) on the models it serves, so a
chain moves between Gemini, Ollama and a local model by naming another model.

    from app.chains import CHAINS, get_chain, summarize
    summarize(model).invoke({"text": "...", "sentences": 2})
    get_chain("qa", model).invoke({"question": "...", "context": "..."})
    get_chain("qa").input_model          # the pydantic model of its input
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from app.chains.chat import ChatInput, chat
from app.chains.extract import ExtractInput, extract
from app.chains.inputs import ChainInput
from app.chains.qa import QAInput, qa
from app.chains.summarize import SummarizeInput, summarize


class UnknownChain(LookupError):
    """No chain has this name."""


@dataclass(frozen=True)
class ChainSpec:
    """A registered chain: its factory, what it is for, and its input model."""

    name: str
    factory: Callable[[BaseChatModel], Runnable[Any, Any]]
    description: str
    input_model: type[ChainInput]

    def __call__(self, model: BaseChatModel) -> Runnable[Any, Any]:
        return self.factory(model)


CHAINS: dict[str, ChainSpec] = {
    spec.name: spec
    for spec in (
        ChainSpec("chat", chat, "Answer a question given a system prompt and the conversation so far.", ChatInput),
        ChainSpec("summarize", summarize, "Summarise a text in at most N sentences.", SummarizeInput),
        ChainSpec("qa", qa, "Answer a question from the given context only, or say it does not know.", QAInput),
        ChainSpec("extract", extract, "Extract an object matching a JSON Schema from a text.", ExtractInput),
    )
}


@overload
def get_chain(name: str) -> ChainSpec: ...
@overload
def get_chain(name: str, model: BaseChatModel) -> Runnable[Any, Any]: ...


def get_chain(name: str, model: BaseChatModel | None = None) -> ChainSpec | Runnable[Any, Any]:
    """The registered chain `name`: its spec, or, given a chat model, the chain built on it."""
    try:
        spec = CHAINS[name]
    except KeyError:
        raise UnknownChain(f"no chain named {name!r}; available: {', '.join(CHAINS)}") from None
    return spec if model is None else spec.factory(model)


__all__ = ["CHAINS", "ChainSpec", "UnknownChain", "chat", "extract", "get_chain", "qa", "summarize"]
