"""The models a service serves: built from the models file, each with its chat model and queue."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from app.core.config import Settings, get_settings
from app.core.errors import APIError, ModelNotFound
from app.core.models_file import ModelsFile, ModelSpec
from app.providers.base import Provider, get_provider
from app.providers.slots import Slots

log = logging.getLogger(__name__)

State = Literal["loading", "ready", "unavailable", "not_configured"]


def build_chat_model(spec: ModelSpec, settings: Settings | None = None) -> BaseChatModel:
    """Build the LangChain chat model for an entry, the same one the service serves.

    Notebooks and the evaluation harness call this, so a prototype runs on the served code.
    """
    return get_provider(spec.provider).build(spec, settings or get_settings())


@dataclass
class ModelHandle:
    spec: ModelSpec
    provider: Provider
    slots: Slots
    chat_model: BaseChatModel | None = None
    state: State = "loading"
    detail: str | None = None
    created: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    #: The provider's direct streaming client, when it has one (`Provider.wire`).
    wire: Any = None

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {"state": self.state, "provider": self.spec.provider}
        if self.detail:
            out["detail"] = self.detail
        out["queue"] = {"active": self.slots.active, "waiting": self.slots.waiting, "depth": self.slots.depth}
        return out


class ModelRegistry:
    def __init__(self, models_file: ModelsFile, settings: Settings) -> None:
        import time

        self.settings = settings
        self.default_model = models_file.default_model or models_file.models[0].name
        self.handles: dict[str, ModelHandle] = {}
        now = int(time.time())
        for spec in models_file.models:
            provider = get_provider(spec.provider)
            concurrency = spec.concurrency or (1 if provider.in_process else 64)
            depth = spec.queue_depth if spec.queue_depth is not None else settings.default_queue_depth
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

    def build_all(self) -> None:
        """Create every chat model object (cheap: no weights are loaded, no connection is made)."""
        for handle in self.handles.values():
            try:
                handle.chat_model = handle.provider.build(handle.spec, self.settings)
                if handle.provider.wire is not None:
                    handle.wire = handle.provider.wire(handle.spec, self.settings)
                handle.state = "loading" if handle.provider.in_process else "ready"
                handle.detail = None
            except APIError as exc:
                handle.state = "not_configured"
                handle.detail = exc.message

    async def load_local(self) -> None:
        """Load in-process weights off the event loop; readiness waits for this."""
        for handle in self.handles.values():
            if not handle.provider.in_process or handle.chat_model is None:
                continue
            try:
                await asyncio.to_thread(handle.chat_model.load)  # type: ignore[attr-defined]
                handle.state = "ready"
            except Exception as exc:
                handle.state = "unavailable"
                handle.detail = str(exc)
                log.error("model %s failed to load: %s", handle.name, exc)

    @property
    def local_ready(self) -> bool:
        return all(h.state == "ready" for h in self.handles.values() if h.provider.in_process)

    async def aclose(self) -> None:
        """Close the direct streaming clients (their pooled connections) in the loop that used them."""
        for handle in self.handles.values():
            if handle.wire is not None:
                await handle.wire.aclose()

    def close(self) -> None:
        for handle in self.handles.values():
            close = getattr(handle.chat_model, "close", None)
            if callable(close):
                close()
