"""Registers `gemini`: Google's Gemini models through `langchain-google-genai`.

The key comes from the variable the entry names (`api_key_env`, default GOOGLE_API_KEY) through
`Settings.env_secret`; without it the model is listed as not configured and requests get a 503 naming
the variable. The SDK's own retries are off (one attempt) because `generation.generate` owns the retry
policy; a prompt Gemini blocks finishes with `content_filter` like a blocked answer does.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from app.core.config import Settings
from app.core.errors import APIError, ServiceUnavailable
from app.core.logging import register_secrets
from app.core.models_file import ModelSpec
from app.providers.base import Provider, ProviderNotConfigured, register
from app.providers.failures import generic_classify, host_of, short_detail, status_of

DEFAULT_KEY_ENV = "GOOGLE_API_KEY"
DEFAULT_ENDPOINT = "https://generativelanguage.googleapis.com"

#: Generic request parameter -> ChatGoogleGenerativeAI call keyword (`stop` is LangChain's own).
PARAM_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_output_tokens",
    "seed": "seed",
    "stop": "stop",
}


def key_env(spec: ModelSpec) -> str:
    return spec.api_key_env or DEFAULT_KEY_ENV


def build(spec: ModelSpec, settings: Settings) -> BaseChatModel:
    variable = key_env(spec)
    key = settings.env_secret(variable)
    if not key:
        raise ProviderNotConfigured(
            f"model {spec.name!r} (gemini) has no API key: set the environment variable {variable} "
            "(or name another one with `api_key_env` in the models file)"
        )
    register_secrets([key])
    from app.providers.gemini_model import SlipwayGemini  # the SDK is heavy: imported when a model needs it

    p = spec.params
    return SlipwayGemini(
        model=spec.upstream_model,
        google_api_key=SecretStr(key),
        vertexai=False,
        base_url=spec.base_url,
        max_retries=1,  # one attempt: the SDK counts attempts, and retries belong to generation.generate
        timeout=spec.timeout_s or settings.default_timeout_s,
        temperature=p.temperature,
        top_p=p.top_p,
        max_output_tokens=p.max_tokens,
        seed=p.seed,
        stop=p.stop,
    )


def call_kwargs(params: dict[str, object]) -> dict[str, Any]:
    return {PARAM_NAMES[k]: v for k, v in params.items() if k in PARAM_NAMES and v is not None}


def classify(exc: BaseException, spec: ModelSpec, settings: Settings) -> APIError | None:
    url = spec.base_url or DEFAULT_ENDPOINT
    detail = short_detail(_upstream_message(exc))
    status = status_of(exc)
    if status == 400 and detail and "api key" in detail.lower():
        return ServiceUnavailable(
            f"model {spec.name!r}: {host_of(url)} refused the API key in {key_env(spec)} ({detail}); check it",
            code="upstream_auth_failed",
        )
    return generic_classify(exc, spec, url, detail=detail)


def _upstream_message(exc: BaseException) -> str | None:
    """The `error.message` Google sent back (google-genai keeps it on the exception or its cause)."""
    from google.genai.errors import APIError as GoogleError

    item: BaseException | None = exc
    while item is not None:
        if isinstance(item, GoogleError):
            return item.message
        item = item.__cause__
    return None


register(Provider(name="gemini", build=build, classify=classify, call_kwargs=call_kwargs))
