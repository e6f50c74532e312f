"""Registers `local`: GGUF models served in-process."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from app.core.config import Settings
from app.core.errors import APIError, GenerationError
from app.core.models_file import ModelSpec
from app.providers.base import Provider, ProviderNotConfigured, register
from app.providers.local import ChatLlamaCpp, LocalModelError, packaged_model_path


def build(spec: ModelSpec, settings: Settings) -> BaseChatModel:
    try:
        path = spec.path or packaged_model_path()
    except LocalModelError as exc:
        raise ProviderNotConfigured(str(exc)) from None
    p = spec.params
    return ChatLlamaCpp(
        model_path=path,
        model_name=spec.name,
        n_ctx=spec.context_window or 2048,
        n_threads=spec.n_threads,
        temperature=p.temperature if p.temperature is not None else 0.2,
        top_p=p.top_p if p.top_p is not None else 0.95,
        max_tokens=p.max_tokens or 256,
        seed=p.seed,
        stop=p.stop,
    )


def classify(exc: BaseException, spec: ModelSpec, settings: Settings) -> APIError | None:
    if isinstance(exc, LocalModelError):
        return GenerationError(f"model {spec.name!r}: {exc}")
    return None


register(Provider(name="local", build=build, classify=classify, in_process=True))
