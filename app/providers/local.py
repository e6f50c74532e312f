"""`local`: GGUF models served in-process by llama.cpp (`app.providers.llama_cpp`), the packaged
SmolLM2-135M-Instruct when the entry names no file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from app.core.config import Settings
from app.core.errors import APIError, GenerationError
from app.core.models_file import ModelSpec
from app.core.output import OutputSpec
from app.providers.base import Provider, ProviderNotConfigured
from app.providers.llama_cpp import ChatLlamaCpp, LocalModelError, packaged_model_path
from app.providers.local_output import check_schema


class LocalProvider(Provider):
    name = "local"
    owned_by = "slipway"
    context_window = 2048
    in_process = True
    concurrency = 1  # one llama.cpp context: generations take turns
    has_logprobs = True

    def check(self, spec: ModelSpec) -> None:
        return None  # `path` is this provider's

    def chat_model(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        try:
            path = spec.path or packaged_model_path()
        except LocalModelError as exc:
            raise ProviderNotConfigured(str(exc)) from None
        p = spec.params
        return ChatLlamaCpp(
            model_path=path,
            model_name=spec.name,
            n_ctx=self.window(spec),
            n_threads=spec.n_threads,
            temperature=p.temperature if p.temperature is not None else 0.2,
            top_p=p.top_p if p.top_p is not None else 0.95,
            max_tokens=p.max_tokens or 256,
            seed=p.seed,
            stop=p.stop,
        )

    def setup_state(self, spec: ModelSpec, settings: Settings) -> str:
        if spec.path is not None:
            return "GGUF found" if Path(spec.path).expanduser().is_file() else f"MISSING GGUF {spec.path}"
        try:
            packaged_model_path()
        except LocalModelError as exc:
            return f"MISSING: {exc}"
        return "packaged model installed"

    def check_output(self, output: OutputSpec, spec: ModelSpec) -> None:
        """Every schema must become a grammar, or the answer could not be guaranteed to match it."""
        super().check_output(output, spec)
        if output.json_schema is not None:
            check_schema(output.json_schema, "response_format.json_schema.schema")
        for index, tool in enumerate(output.tools):
            if tool.parameters is not None:
                check_schema(tool.parameters, f"tools.{index}.function.parameters")

    def output_kwargs(self, output: OutputSpec) -> dict[str, Any]:
        kwargs: dict[str, Any] = {} if output.logprobs is None else {"logprobs": output.logprobs}
        if output.json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "schema": output.json_schema}
        elif output.json_object:
            kwargs["response_format"] = {"type": "json_object"}
        return kwargs

    def classify(self, exc: BaseException, spec: ModelSpec, settings: Settings) -> APIError | None:
        if isinstance(exc, LocalModelError):
            return GenerationError(f"model {spec.name!r}: {exc}")
        return None
