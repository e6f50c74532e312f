"""`openai`: any OpenAI-compatible upstream (vLLM, llama.cpp server, LiteLLM, Azure OpenAI)
through `langchain-openai`, addressed by the entry's `base_url` and keyed by its `api_key_env`.

This is how a deployment moves model serving onto its own machines without changing its clients.
The client's own retries are off (`max_retries=0`): `generation.generate` owns the retry policy.
Streams ask for usage (`stream_options.include_usage`), which vLLM and llama.cpp's server honour.
Chains use the LangChain model; the API's generations stream through `OpenAIWire`, the same request without
the SDK's per-chunk cost (`app.providers.openai_wire`).
"""

from __future__ import annotations

import httpx
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from app.core.config import Settings
from app.core.errors import APIError
from app.core.logging import register_secrets
from app.core.models_file import ModelSpec
from app.providers.base import Provider, ProviderNotConfigured, Stream
from app.providers.embedders import Embedder, OpenAIEmbedder
from app.providers.failures import generic_classify, short_detail
from app.providers.openai_wire import OpenAIWire, UpstreamHTTPError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
#: Self-hosted servers often run without keys; the client library still insists on one.
NO_KEY = "not-needed"


def api_key(spec: ModelSpec, settings: Settings) -> str:
    """The entry's key; a variable named in the models file must exist, OPENAI_API_KEY is optional."""
    if spec.api_key_env:
        key = settings.env_secret(spec.api_key_env)
        if not key:
            raise ProviderNotConfigured(
                f"model {spec.name!r} (openai-compatible at {spec.base_url}) has no API key: "
                f"set the environment variable {spec.api_key_env}"
            )
        return key
    return settings.env_secret(DEFAULT_KEY_ENV) or NO_KEY


class OpenAIProvider(Provider):
    name = "openai"
    owned_by = "openai-compatible"
    embeds = True
    has_logprobs = True  # passed through: the upstream computes them
    #: Generic request parameter -> ChatOpenAI call keyword (sent as `max_completion_tokens`).
    param_names = {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_tokens",
        "seed": "seed",
        "stop": "stop",
    }

    def check(self, spec: ModelSpec) -> None:
        super().check(spec)
        if not spec.base_url:
            raise ValueError("provider openai needs `base_url` (e.g. http://vllm:8000/v1)")

    def chat_model(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        from langchain_openai import ChatOpenAI

        key = api_key(spec, settings)
        if key != NO_KEY:
            register_secrets([key])
        p = spec.params
        return ChatOpenAI(
            model=self.upstream_model(spec),
            base_url=spec.base_url,
            api_key=SecretStr(key),
            max_retries=0,
            timeout=httpx.Timeout(spec.timeout_s or settings.default_timeout_s, connect=spec.connect_timeout_s),
            stream_usage=True,
            temperature=p.temperature,
            top_p=p.top_p,
            max_tokens=p.max_tokens,
            seed=p.seed,
            stop=p.stop,
        )

    def embedder(self, spec: ModelSpec, settings: Settings) -> Embedder:
        key = api_key(spec, settings)
        if key != NO_KEY:
            register_secrets([key])
        assert spec.base_url is not None  # `check` refuses an entry without one
        return OpenAIEmbedder(
            self.upstream_model(spec), spec.base_url, key, spec.timeout_s or settings.default_timeout_s
        )

    def stream(self, spec: ModelSpec, settings: Settings, chat_model: BaseChatModel) -> Stream:
        """The direct streaming client (`openai_wire`: the same request, no SDK on the hot path)."""
        key = api_key(spec, settings)
        return OpenAIWire(spec, self.upstream_model(spec), settings, None if key == NO_KEY else key)

    def classify(self, exc: BaseException, spec: ModelSpec, settings: Settings) -> APIError | None:
        import openai

        detail = None
        item: BaseException | None = exc
        while item is not None:
            if isinstance(item, openai.APIStatusError):
                detail = _message(item.body) or item.message
                break
            if isinstance(item, UpstreamHTTPError):
                detail = item.message
                break
            item = item.__cause__
        return generic_classify(exc, spec, spec.base_url, detail=short_detail(detail))


def _message(body: object) -> str | None:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or "") or None
        if isinstance(error, str):
            return error
    return None
