"""What a provider is: a function that builds a LangChain chat model from a models-file entry.

Providers join through `register(name)` (built-ins too, the way `llm` plugins register models), so a
chain never knows which provider it runs on, and adding one touches no other module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from app.core.config import Settings
from app.core.errors import APIError, ServiceUnavailable
from app.core.models_file import ModelSpec


@dataclass(slots=True)
class Piece:
    """One streamed chunk as generation reads it, whatever the provider: text (maybe empty), a finish
    reason, token counts when the upstream sent them."""

    text: str = ""
    finish_reason: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ProviderNotConfigured(ServiceUnavailable):
    """A model that cannot serve until the operator acts (missing key, missing file)."""

    code = "provider_not_configured"


@dataclass(frozen=True)
class Provider:
    name: str
    build: Callable[[ModelSpec, Settings], BaseChatModel]
    #: Turns a provider library's exception into an APIError (503/504/429...), or None if unknown.
    classify: Callable[[BaseException, ModelSpec, Settings], APIError | None] | None = None
    #: True when the model runs in this process and must load before the service is ready.
    in_process: bool = False
    #: Maps generic request params (temperature, top_p, max_tokens, stop, seed) to the chat model's
    #: call kwargs; identity by default (LangChain's own names).
    call_kwargs: Callable[[dict[str, object]], dict[str, object]] | None = None
    #: Optional direct streaming client for the API hot path (see `app.providers.openai_wire`):
    #: built per entry, it has `stream(messages, call_kwargs)` yielding pieces and `aclose()`.
    wire: Callable[[ModelSpec, Settings], Any] | None = None


PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    PROVIDERS[provider.name] = provider
    return provider


def get_provider(name: str) -> Provider:
    # Built-ins register on import; import lazily so `app.providers.base` stays light.
    from app.providers import builtin  # noqa: F401

    try:
        return PROVIDERS[name]
    except KeyError:
        raise ServiceUnavailable(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
