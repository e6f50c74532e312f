"""Serving the chains of `app.chains` over HTTP: list, invoke, batch, stream, and LangServe's other
per-chain routes (schemas, `stream_log`, `stream_events`) so `RemoteRunnable` works unchanged.

Each request builds the chain on a `ServedChatModel`, so a chain takes the model's queue slot and
gets its timeouts, retries and fallbacks exactly as a chat request does. Input is checked against the
chain's own input model first: a missing field is a 400 naming it (`input.question`), never a 500
from deep inside a prompt template.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from app.chains import CHAINS, ChainSpec, UnknownChain, get_chain
from app.core.errors import APIError, GenerationError, InvalidRequest, NotFound
from app.protocol.chains import ChainParams
from app.providers.registry import ModelRegistry
from app.services.events import StreamStarted
from app.services.first_event import FirstEvent
from app.services.generation import Generator
from app.services.served_model import ServedChatModel

log = logging.getLogger(__name__)

MAX_BATCH_CONCURRENCY = 8


def chain_spec(name: str) -> ChainSpec:
    try:
        return get_chain(name)
    except UnknownChain:
        raise NotFound(
            f"The chain '{name}' does not exist. Available chains: {', '.join(CHAINS)}", code="chain_not_found"
        ) from None


def schema(registry: ModelRegistry, name: str, which: str) -> dict[str, Any]:
    """LangServe's `/input_schema`, `/output_schema`, `/config_schema`: from the runnable itself."""
    runnable = chain_spec(name)(ServedChatModel(generator=Generator(registry)))
    if which == "input":
        return runnable.get_input_jsonschema()
    if which == "output":
        return runnable.get_output_jsonschema()
    return runnable.get_config_jsonschema()


def describe(registry: ModelRegistry) -> dict[str, Any]:
    """Every chain with the JSON schemas of its input and output, taken from the runnable itself."""
    data = []
    for spec in CHAINS.values():
        runnable = spec(ServedChatModel(generator=Generator(registry)))
        data.append(
            {
                "id": spec.name,
                "object": "chain",
                "description": spec.description,
                "input_schema": runnable.get_input_jsonschema(),
                "output_schema": runnable.get_output_jsonschema(),
            }
        )
    return {"object": "list", "data": data}


def check_input(spec: ChainSpec, value: dict[str, Any], where: str) -> dict[str, Any]:
    """The input validated by the chain's model, or a 400 naming the first bad field."""
    try:
        return spec.input_model.model_validate(value).model_dump(by_alias=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join([where, *(str(p) for p in first["loc"])])
        if first["type"] == "missing":
            raise InvalidRequest(
                f"'{param}' is a required property of chain {spec.name!r}",
                param=param,
                code="missing_required_parameter",
            ) from None
        if first["type"] == "extra_forbidden":
            raise InvalidRequest(
                f"'{param}' is not an input of chain {spec.name!r}", param=param, code="unknown_parameter"
            ) from None
        raise InvalidRequest(
            f"Invalid value for '{param}': {first['msg']}", param=param, code="invalid_value"
        ) from None


class ChainRun:
    """One HTTP call of a chain: the chain built on the served model, and what the model did."""

    def __init__(self, generator: Generator, name: str, model: str | None, params: ChainParams | None) -> None:
        self.spec = chain_spec(name)
        self.handle = generator.registry.chat(model)  # 404 for an unknown model before any work
        self.served = ServedChatModel(generator=generator, model_name=self.handle.name, params=params or ChainParams())
        self.runnable = self.spec(self.served)

    @property
    def model(self) -> str:
        return self.served.outcome.model or self.handle.name

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "usage": self.served.outcome.usage.as_dict()}


async def invoke(run: ChainRun, value: dict[str, Any]) -> dict[str, Any]:
    output = await _unwrap(run.runnable.ainvoke(check_input(run.spec, value, "input")))
    return {"output": output, **run.summary()}


async def batch(run: ChainRun, values: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = [check_input(run.spec, value, f"inputs.{i}") for i, value in enumerate(values)]
    concurrency = max(1, min(run.handle.slots.concurrency, MAX_BATCH_CONCURRENCY))
    outputs = await _unwrap(run.runnable.abatch(inputs, config={"max_concurrency": concurrency}))
    return {"output": outputs, **run.summary()}


async def _unwrap(work: Any) -> Any:
    """A failure after the first token of a non-streamed call is still just a failed call."""
    try:
        return await work
    except StreamStarted as exc:
        raise exc.error from None


def _default(value: Any) -> Any:
    """LangChain objects as LangServe's serializer writes them (pydantic's dump: a message keeps its
    `type`, which `RemoteRunnable` revives it by); anything else as its text."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    return str(value)


def _event(event: str, data: Any) -> dict[str, str]:
    return {"event": event, "data": orjson.dumps(data, default=_default).decode()}


def _error(error: APIError) -> dict[str, str]:
    """LangServe's error event (`status_code`, `message`: what `RemoteRunnable` raises from) with
    OpenAI's error object beside them, as everywhere else here."""
    return _event("error", {"status_code": error.status_code, "message": error.public_message(), **error.to_dict()})


@dataclass(frozen=True)
class StreamFilters:
    """`astream_events`/`astream_log`'s filters, as a LangServe client sends them."""

    include_names: list[str] | None = None
    include_types: list[str] | None = None
    include_tags: list[str] | None = None
    exclude_names: list[str] | None = None
    exclude_types: list[str] | None = None
    exclude_tags: list[str] | None = None

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class ChainStream:
    """LangServe's stream events: `data` (one item each), then `end`, or `error` then `end`. The items
    are the chain's output chunks (`stream`), its run-log patches (`stream_log`: `{"ops": [...]}`),
    or its `astream_events` v2 events (`stream_events`).

    `first()` pulls the first item before headers are sent, so a failure before any output gets a
    real status and `X-Slipway-Model` names the model that really answers.
    """

    def __init__(
        self, run: ChainRun, value: dict[str, Any], kind: str = "stream", filters: StreamFilters | None = None
    ) -> None:
        self.run = run
        checked = check_input(run.spec, value, "input")
        options = (filters or StreamFilters()).kwargs()
        self.chunks: AsyncIterator[Any]
        if kind == "stream_events":
            self.chunks = run.runnable.astream_events(checked, version="v2", **options)
        elif kind == "stream_log":
            self.chunks = _log_ops(run.runnable.astream_log(checked, diff=True, **options))
        else:
            self.chunks = run.runnable.astream(checked)
        self.kind = kind
        self._chunks = FirstEvent(self.chunks)

    async def first(self, wait_s: float) -> None:
        try:
            await self._chunks.wait(wait_s)
        except StreamStarted as exc:
            raise exc.error from None

    async def body(self) -> AsyncIterator[dict[str, str]]:
        try:
            async for chunk in self._chunks:
                if chunk != "" or self.kind != "stream":  # the model's closing (usage-only) chunk parses to ""
                    yield _event("data", chunk)
        except StreamStarted as exc:
            yield _error(exc.error)
        except APIError as exc:
            yield _error(exc)
        except Exception:
            log.exception("chain %s failed while streaming", self.run.spec.name)
            yield _error(GenerationError("the chain failed while streaming"))
        finally:
            await self.aclose()
        yield _event("end", self.run.summary())

    async def aclose(self) -> None:
        await self._chunks.cancel()
        aclose = getattr(self.chunks, "aclose", None)  # an async generator underneath
        if aclose is not None:
            with contextlib.suppress(RuntimeError):
                await aclose()


async def _log_ops(patches: AsyncIterator[Any]) -> AsyncIterator[dict[str, Any]]:
    """Run-log patches as LangServe sends them: `{"ops": [...]}` (jsonpatch operations)."""
    try:
        async for patch in patches:
            yield {"ops": patch.ops}
    finally:
        await patches.aclose()  # type: ignore[attr-defined]  # an async generator underneath
