"""`gemini`: Google's Gemini models through `langchain-google-genai`.

The key comes from the variable the entry names (`api_key_env`, default GOOGLE_API_KEY) through
`Settings.env_secret`; without it the model is listed as not configured and requests get a 503 naming
the variable. The SDK's own retries are off (one attempt) because `generation.generate` owns the retry
policy; a prompt Gemini blocks finishes with `content_filter` like a blocked answer does.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from pydantic import SecretStr

from app.core.config import Settings
from app.core.errors import APIError, ServiceUnavailable
from app.core.logging import register_secrets
from app.core.models_file import ModelSpec
from app.core.output import OutputSpec
from app.providers.base import Provider, ProviderNotConfigured, Stream
from app.providers.embedders import Embedder, GeminiEmbedder
from app.providers.failures import generic_classify, host_of, short_detail, status_of
from app.providers.gemini_stream import GeminiStream

DEFAULT_KEY_ENV = "GOOGLE_API_KEY"
DEFAULT_ENDPOINT = "https://generativelanguage.googleapis.com"


def key_env(spec: ModelSpec) -> str:
    return spec.api_key_env or DEFAULT_KEY_ENV


class GeminiProvider(Provider):
    name = "gemini"
    owned_by = "google"
    embeds = True
    default_model = "gemini-3.8-flash"
    #: Generic request parameter -> ChatGoogleGenerativeAI call keyword (`stop` is LangChain's own).
    param_names = {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_output_tokens",
        "seed": "seed",
        "stop": "stop",
    }

    def chat_model(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        return _chat_model(self.upstream_model(spec), spec, settings)

    def stream(self, spec: ModelSpec, settings: Settings, chat_model: BaseChatModel) -> Stream:
        """The chat model's own request, sent by its google-genai client, read without LangChain's
        streaming layers (`gemini_stream`); chains keep `chat_model`."""
        return GeminiStream(self, chat_model)

    def embedder(self, spec: ModelSpec, settings: Settings) -> Embedder:
        timeout = spec.timeout_s or settings.default_timeout_s
        return GeminiEmbedder(self.upstream_model(spec), _key(spec, settings), spec.base_url, timeout)

    def classify(self, exc: BaseException, spec: ModelSpec, settings: Settings) -> APIError | None:
        return _classify(exc, spec)

    def bind_tools(self, chat_model: BaseChatModel, output: OutputSpec) -> Runnable[LanguageModelInput, BaseMessage]:
        """Function declarations; `required` is Gemini's function-calling mode ANY."""
        choice = output.tool_choice
        tool_choice = None if choice == "auto" else "any" if choice == "required" else choice
        return chat_model.bind_tools([t.openai() for t in output.tools], tool_choice=tool_choice)

    def output_kwargs(self, output: OutputSpec) -> dict[str, Any]:
        """JSON mode (`responseMimeType`), with the schema as `responseSchema` when one is given."""
        if output.json_schema is not None:
            return {"response_mime_type": "application/json", "response_schema": output.json_schema}
        return {"response_mime_type": "application/json"} if output.json_object else {}

    def setup_state(self, spec: ModelSpec, settings: Settings) -> str:
        variable = key_env(spec)
        return f"key in ${variable}" if settings.env_secret(variable) else f"MISSING ${variable}"


def _key(spec: ModelSpec, settings: Settings) -> str:
    variable = key_env(spec)
    key = settings.env_secret(variable)
    if not key:
        raise ProviderNotConfigured(
            f"model {spec.name!r} (gemini) has no API key: set the environment variable {variable} "
            "(or name another one with `api_key_env` in the models file)"
        )
    register_secrets([key])
    return key


def _chat_model(model: str, spec: ModelSpec, settings: Settings) -> BaseChatModel:
    key = _key(spec, settings)
    from app.providers.gemini_chat import SlipwayGemini  # the SDK is heavy: imported when a model needs it

    p = spec.params
    return SlipwayGemini(
        model=model,
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


def _classify(exc: BaseException, spec: ModelSpec) -> APIError | None:
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
