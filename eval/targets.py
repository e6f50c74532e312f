"""Where answers come from: a Slipway URL (its OpenAI API) or a provider run in-process via `app`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.core.models_file import ModelSpec


@dataclass
class Answer:
    text: str
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Target(Protocol):
    name: str
    model: str

    async def answer(
        self,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        chain_input: dict | None,
        *,
        json_schema: dict[str, Any] | None = None,
    ) -> Answer: ...


def openai_response_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "grade", "schema": schema, "strict": True}}


def _spec(target: str, model: str | None) -> ModelSpec:
    from app.core.models_file import DEFAULT_SYSTEM_PROMPT, ModelSpec

    if target == "local":
        return ModelSpec(name=model or "smollm2", provider="local", system_prompt=DEFAULT_SYSTEM_PROMPT)
    provider, _, rest = target.partition(":")
    if provider == "openai":
        return ModelSpec(name=model or "model", provider="openai", base_url=rest, model=model)
    if provider in ("ollama", "gemini"):
        return ModelSpec(name=rest or provider, provider=provider, model=model or rest or None)
    raise ValueError(f"unknown target {target!r}: use local, ollama:MODEL, gemini:MODEL, openai:BASE_URL or a URL")


class InProcessTarget:
    """A provider through the same code the service serves (app.providers.registry.build_chat_model)."""

    def __init__(self, target: str, model: str | None, chain: str | None, params: dict[str, Any] | None = None) -> None:
        from app.core.models_file import GenerationParams
        from app.providers.registry import build_chat_model

        # The run's parameters become the entry's defaults, so a chain (which calls the model without
        # per-call arguments) generates with them too.
        known = {k: v for k, v in (params or {}).items() if k in GenerationParams.model_fields and v is not None}
        self.spec = _spec(target, model).model_copy(update={"params": GenerationParams(**known)})
        self.name, self.model = target, self.spec.name
        # The cache key: the whole entry (system prompt, provider model, path...), not just its name.
        self.identity = {"target": target, "spec": self.spec.model_dump(mode="json")}
        self.chat_model = build_chat_model(self.spec)
        self.chain_name = chain
        self.chain = None
        if chain:
            from app.chains import get_chain

            self.chain = get_chain(chain, self.chat_model)

    async def answer(
        self,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        chain_input: dict | None,
        *,
        json_schema: dict[str, Any] | None = None,
    ) -> Answer:
        from app.protocol.openai import ChatMessage
        from app.services.completions import to_langchain

        start = time.perf_counter()
        if self.chain is not None:
            out = await self.chain.ainvoke(chain_input or {})
            return Answer(text=str(out), latency_s=time.perf_counter() - start)
        lc = to_langchain([ChatMessage(**m) for m in messages], self.spec.system_prompt)
        kwargs = {k: v for k, v in params.items() if v is not None}
        if json_schema is not None:
            kwargs.update(self._structured(json_schema))
        msg = await self.chat_model.ainvoke(lc, **kwargs)
        usage: dict[str, Any] = dict(msg.usage_metadata or {})
        return Answer(
            text=str(msg.content),
            latency_s=time.perf_counter() - start,
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
        )


    def _structured(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The provider's own way to answer in a schema, as the service asks it (Provider.output_kwargs)."""
        from app.core.output import OutputSpec
        from app.providers.registry import PROVIDERS

        kwargs = PROVIDERS.get(self.spec.provider).output_kwargs(OutputSpec(json_schema=schema, schema_name="grade"))
        # OpenAI-compatible upstreams take it as a call keyword that ChatOpenAI sends as is.
        return kwargs or {"response_format": openai_response_format(schema)}


class SlipwayTarget:
    """A running Slipway through the official OpenAI client; chains through /v1/chains/{name}/invoke.

    GET /v1/models is asked first, so a wrong key or an unknown model stops the run before any case
    (a usage error) instead of failing every case; with no --model, the first listed model is used.
    """

    def __init__(self, url: str, model: str | None, chain: str | None, api_key: str | None) -> None:
        import openai

        self.name, self.chain = url, chain
        base = url.rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
        self.client = openai.AsyncOpenAI(base_url=base, api_key=api_key or "none", max_retries=2)
        self.model = self._check_model(base, api_key, model)

    @staticmethod
    def _check_model(base: str, api_key: str | None, model: str | None) -> str:
        import openai

        with openai.OpenAI(base_url=base, api_key=api_key or "none", max_retries=2) as client:
            try:
                served = [m.id for m in client.models.list().data]
            except openai.AuthenticationError as exc:
                given = "the key given was refused" if api_key else "it needs a key and none was given"
                body = exc.body if isinstance(exc.body, dict) else {}
                said = f" ({body['message']})" if isinstance(body.get("message"), str) else ""
                raise ValueError(
                    f"{base} answered 401{said}: {given}. Set SLIPWAY_API_KEY (or --api-key) to a key of that service "
                    "(`python -m app keys create --name eval` on its host)"
                ) from None
            except openai.APIConnectionError:
                raise ValueError(
                    f"cannot connect to {base}: is Slipway running there? (start it with `python -m app`, "
                    "or check the URL and port)"
                ) from None
            except openai.OpenAIError as exc:
                raise ValueError(f"{base}/models: {type(exc).__name__}: {exc}") from None
        if not served:
            raise ValueError(f"{base}/models lists no model")
        if model is not None and model not in served:
            raise ValueError(f"model {model!r} is not served at {base}; it serves: {', '.join(served)}")
        return model or served[0]

    async def answer(
        self,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        chain_input: dict | None,
        *,
        json_schema: dict[str, Any] | None = None,
    ) -> Answer:
        start = time.perf_counter()
        sent = {k: v for k, v in params.items() if v is not None}
        if json_schema is not None:
            sent["response_format"] = openai_response_format(json_schema)
        if self.chain:
            body = {"input": chain_input or {}, "model": self.model, "params": sent}
            r: Any = await self.client.post(f"/chains/{self.chain}/invoke", body=body, cast_to=object)
            usage = r.get("usage") or {}
            return Answer(
                text=str(r["output"]),
                latency_s=time.perf_counter() - start,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
            )
        out = await self.client.chat.completions.create(model=self.model, messages=messages, **sent)  # type: ignore[arg-type]
        return Answer(
            text=out.choices[0].message.content or "",
            latency_s=time.perf_counter() - start,
            prompt_tokens=out.usage.prompt_tokens if out.usage else None,
            completion_tokens=out.usage.completion_tokens if out.usage else None,
        )


def make_target(
    target: str,
    model: str | None = None,
    chain: str | None = None,
    api_key: str | None = None,
    params: dict[str, Any] | None = None,
) -> Target:
    if target.startswith(("http://", "https://")):
        return SlipwayTarget(target, model, chain, api_key)
    return InProcessTarget(target, model, chain, params)
