"""`ollama`: models served by an Ollama server (Llama 3.1 8B by default) via `langchain-ollama`.

The host is the entry's `base_url`, else OLLAMA_HOST, else Ollama's own default. No connection is made
at build time (`validate_model_on_init` stays off) so a dead Ollama never blocks start-up; failures
are explained per request instead, a missing model with the `ollama pull` command that fixes it.

The context window is sent as `num_ctx` on every request: Ollama's own default (2,048 or 4,096 tokens
by version) silently drops the start of a longer prompt, while the conversation service fits history
to the entry's window (`Provider.window`). Per-call `options` replace the model's options wholesale
in langchain-ollama, so `num_ctx` is merged into them (`app.providers.ollama_chat`).
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel

from app.core.config import Settings
from app.core.errors import APIError, InvalidRequest, ServiceUnavailable
from app.core.models_file import ModelSpec
from app.core.output import OutputSpec
from app.providers.base import Provider, Stream
from app.providers.embedders import Embedder, OllamaEmbedder
from app.providers.failures import generic_classify, host_of, short_detail
from app.providers.ollama_wire import OllamaHTTPError, OllamaWire

DEFAULT_HOST = "http://localhost:11434"

#: Generic request parameter -> Ollama option (https://github.com/ollama/ollama/blob/main/docs/modelfile.md).
OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "num_predict",
    "seed": "seed",
    "stop": "stop",
}


def host(spec: ModelSpec, settings: Settings) -> str:
    return spec.base_url or settings.ollama_host or DEFAULT_HOST


class OllamaProvider(Provider):
    name = "ollama"
    owned_by = "ollama"
    default_model = "llama3.1:8b"
    embeds = True

    def chat_model(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        from app.providers.ollama_chat import SlipwayChatOllama  # langchain-ollama: imported when needed

        p = spec.params
        timeout = httpx.Timeout(spec.timeout_s or settings.default_timeout_s, connect=spec.connect_timeout_s)
        return SlipwayChatOllama(
            model=self.upstream_model(spec),
            num_ctx=self.window(spec),
            base_url=host(spec, settings),
            temperature=p.temperature,
            top_p=p.top_p,
            num_predict=p.max_tokens,
            seed=p.seed,
            stop=p.stop,
            client_kwargs={"timeout": timeout},
        )

    def stream(self, spec: ModelSpec, settings: Settings, chat_model: BaseChatModel) -> Stream:
        """The direct NDJSON client (`ollama_wire`: the same request as ChatOllama's, no LangChain on
        the API path); chains keep `chat_model`."""
        return OllamaWire(spec, self.upstream_model(spec), settings, host(spec, settings), self.window(spec))

    def embedder(self, spec: ModelSpec, settings: Settings) -> Embedder:
        timeout = httpx.Timeout(spec.timeout_s or settings.default_timeout_s, connect=spec.connect_timeout_s)
        return OllamaEmbedder(self.upstream_model(spec), host(spec, settings), timeout)

    def check_output(self, output: OutputSpec, spec: ModelSpec) -> None:
        super().check_output(output, spec)
        if output.offers_tools and output.tool_choice != "auto":
            raise InvalidRequest(
                f"Ollama decides itself whether to call a tool: tool_choice {output.tool_choice!r} is not "
                f"supported for model {spec.name!r} (provider ollama); use 'auto' or 'none'",
                param="tool_choice",
                code="unsupported_parameter",
            )

    def output_kwargs(self, output: OutputSpec) -> dict[str, Any]:
        """Ollama's `format`: "json", or the schema itself (Ollama >= 0.5 constrains to it)."""
        if output.json_schema is not None:
            return {"format": output.json_schema}
        return {"format": "json"} if output.json_object else {}

    def setup_state(self, spec: ModelSpec, settings: Settings) -> str:
        return f"at {host(spec, settings)}"

    def call_kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        """Ollama takes sampling parameters as `options`; passing them all there overrides the defaults."""
        options = {OPTION_NAMES[k]: v for k, v in params.items() if k in OPTION_NAMES and v is not None}
        return {"options": options} if options else {}

    def classify(self, exc: BaseException, spec: ModelSpec, settings: Settings) -> APIError | None:
        from ollama import ResponseError

        url = host(spec, settings)
        detail = None
        if isinstance(exc, ResponseError | OllamaHTTPError):
            detail = str(exc.error)
            if exc.status_code == 404 or ("model" in detail and "not found" in detail):
                model = self.upstream_model(spec)
                return ServiceUnavailable(
                    f"model {spec.name!r}: Ollama at {host_of(url)} does not have the model {model!r}; "
                    f"pull it there with `ollama pull {model}`",
                    code="model_not_pulled",
                )
        return generic_classify(exc, spec, url, detail=short_detail(detail), url_hint="`base_url` (or OLLAMA_HOST)")
