"""The providers the service has (one line each) and the models it serves: built from the models
file, each entry with its provider, chat model, stream and queue."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal

from langchain_core.language_models import BaseChatModel

from app.core.config import Settings, get_settings
from app.core.errors import APIError, InvalidRequest, ModelNotFound, ServiceUnavailable
from app.core.models_file import ModelsFile, ModelSpec
from app.providers.base import Provider, Stream
from app.providers.embedders import Embedder
from app.providers.gemini import GeminiProvider
from app.providers.local import LocalProvider
from app.providers.ollama import OllamaProvider
from app.providers.openai import OpenAIProvider
from app.providers.slots import Slots

log = logging.getLogger(__name__)

State = Literal["loading", "ready", "unavailable", "not_configured"]


class Providers:
    """The provider catalog: the models file is checked against it (`ProviderCatalog`)."""

    def __init__(self, *providers: Provider) -> None:
        self.by_name = {p.name: p for p in providers}

    def names(self) -> list[str]:
        return list(self.by_name)

    def get(self, name: str) -> Provider:
        try:
            return self.by_name[name]
        except KeyError:
            raise ServiceUnavailable(f"unknown provider {name!r}; known: {', '.join(self.by_name)}") from None

    def resolve(self, spec: ModelSpec) -> None:
        provider = self.get(spec.provider)
        if spec.kind == "embedding" and not provider.embeds:
            embedders = ", ".join(p.name for p in self.by_name.values() if p.embeds)
            raise ValueError(f"provider {provider.name} serves no embedding models here; use one of {embedders}")
        provider.check(spec)
        if spec.model is None and provider.default_model:
            spec.model = provider.default_model


#: Every provider Slipway has. Adding one: a module with a `Provider` subclass, and one entry here.
PROVIDERS = Providers(LocalProvider(), OllamaProvider(), GeminiProvider(), OpenAIProvider())


def build_chat_model(spec: ModelSpec, settings: Settings | None = None) -> BaseChatModel:
    """Build the LangChain chat model for an entry, the same one the service serves.

    Notebooks and the evaluation harness call this, so a prototype runs on the served code.
    """
    PROVIDERS.resolve(spec)
    return PROVIDERS.get(spec.provider).chat_model(spec, settings or get_settings())


@dataclass
class ModelHandle:
    spec: ModelSpec
    provider: Provider
    slots: Slots
    chat_model: BaseChatModel | None = None
    #: How `generate()` reads this model (`Provider.stream`), once built.
    stream: Stream | None = None
    #: An embedding entry's client (`Provider.embedder`), once built.
    embedder: Embedder | None = None
    state: State = "loading"
    detail: str | None = None
    created: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def window(self) -> int:
        """The context window (the entry's, else the provider's default)."""
        return self.provider.window(self.spec)

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {"state": self.state, "provider": self.spec.provider, "kind": self.spec.kind}
        if self.spec.description:
            out["description"] = self.spec.description
        if self.detail:
            out["detail"] = self.detail
        out["queue"] = {"active": self.slots.active, "waiting": self.slots.waiting, "depth": self.slots.depth}
        return out


class ModelRegistry:
    def __init__(self, models_file: ModelsFile, settings: Settings, providers: Providers = PROVIDERS) -> None:
        self.settings = settings
        self.default_model = models_file.default_model or models_file.models[0].name
        self.handles: dict[str, ModelHandle] = {}
        now = int(time.time())
        for spec in models_file.models:
            providers.resolve(spec)
            provider = providers.get(spec.provider)
            concurrency = settings.per_worker(spec.concurrency or provider.concurrency)
            depth = spec.queue_depth if spec.queue_depth is not None else settings.default_queue_depth
            depth = settings.per_worker(depth) if depth else 0
            self.handles[spec.name] = ModelHandle(
                spec=spec,
                provider=provider,
                slots=Slots(name=spec.name, concurrency=concurrency, depth=depth),
                created=now,
            )

    def get(self, name: str | None) -> ModelHandle:
        key = name or self.default_model
        try:
            return self.handles[key]
        except KeyError:
            raise ModelNotFound(
                f"The model '{key}' does not exist. Available models: {', '.join(self.handles)}",
                param="model",
            ) from None

    def chat(self, name: str | None) -> ModelHandle:
        """A chat model by name (the default one for None); 400 for an embedding model."""
        handle = self.get(name)
        if handle.spec.kind != "chat":
            raise InvalidRequest(
                f"The model {handle.name!r} is an embedding model: it answers POST /v1/embeddings "
                f"(and Ollama's /api/embed), not chat. Chat models: {', '.join(self.names('chat'))}",
                param="model",
                code="model_not_chat",
            )
        return handle

    def embedding(self, name: str | None) -> ModelHandle:
        """An embedding model by name (the first one for None); 400 for a chat model."""
        embedders = self.names("embedding")
        if name is None and embedders:
            name = embedders[0]
        handle = self.get(name)
        if handle.spec.kind != "embedding":
            offer = (
                f"Embedding models: {', '.join(embedders)}"
                if embedders
                else (
                    "No embedding model is configured: add an entry with `kind: embedding` "
                    "(provider ollama, gemini or openai) to the models file"
                )
            )
            raise InvalidRequest(
                f"The model {handle.name!r} is a chat model, not an embedding model. {offer}",
                param="model",
                code="model_not_embedding",
            )
        return handle

    def names(self, kind: str) -> list[str]:
        return [h.name for h in self.handles.values() if h.spec.kind == kind]

    def build_all(self) -> None:
        """Create every model object (cheap: no weights are loaded, no connection is made)."""
        for handle in self.handles.values():
            try:
                if handle.spec.kind == "embedding":
                    handle.embedder = handle.provider.embedder(handle.spec, self.settings)
                    handle.state = "ready"
                    handle.detail = None
                    continue
                handle.chat_model = handle.provider.chat_model(handle.spec, self.settings)
                handle.stream = handle.provider.stream(handle.spec, self.settings, handle.chat_model)
                handle.state = "loading" if handle.provider.in_process else "ready"
                handle.detail = None
            except APIError as exc:
                handle.state = "not_configured"
                handle.detail = exc.message

    async def load_local(self) -> None:
        """Load in-process weights off the event loop; readiness waits for this."""
        for handle in self.handles.values():
            load = getattr(handle.chat_model, "load", None)
            if not handle.provider.in_process or load is None:
                continue
            try:
                await asyncio.to_thread(load)
                handle.state = "ready"
            except Exception as exc:
                handle.state = "unavailable"
                handle.detail = str(exc)
                log.error("model %s failed to load: %s", handle.name, exc)

    def queues(self) -> list[tuple[str, int, int, int]]:
        """(model, waiting, active, depth) per model, for the queue gauges."""
        return [(h.name, h.slots.waiting, h.slots.active, h.slots.depth) for h in self.handles.values()]

    def busy(self) -> int:
        """Generations running or waiting, over every model (graceful shutdown logs it)."""
        return sum(h.slots.active + h.slots.waiting for h in self.handles.values())

    async def aclose(self) -> None:
        """Close the streams' pooled connections in the loop that used them."""
        for handle in self.handles.values():
            if handle.stream is not None:
                await handle.stream.aclose()
            if handle.embedder is not None:
                await handle.embedder.aclose()

    def close(self) -> None:
        for handle in self.handles.values():
            close = getattr(handle.chat_model, "close", None)
            if callable(close):
                close()
