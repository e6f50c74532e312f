"""Chains over HTTP: GET /v1/chains, POST /v1/chains/{name}/invoke | /batch | /stream | /stream_log |
/stream_events (SSE), GET /v1/chains/{name}/input_schema | /output_schema | /config_schema: LangServe's
routes, so its `RemoteRunnable` client works on `http://.../v1/chains/<name>/`."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from app.api.answers import json_answer, sse_answer
from app.api.deps import GeneratorDep, RegistryDep, SettingsDep
from app.api.routing import SlipwayRoute
from app.core.errors import InvalidRequest
from app.protocol.chains import ChainBatchRequest, ChainRequest, ChainStreamRequest
from app.services import chains

router = APIRouter(prefix="/v1/chains", tags=["chains"], route_class=SlipwayRoute)


@router.get("")
async def list_chains(registry: RegistryDep) -> dict[str, Any]:
    return chains.describe(registry)


@router.post("/{name}/invoke", response_model=None)
async def invoke(name: str, body: ChainRequest, request: Request, generator: GeneratorDep) -> Response:
    run = chains.ChainRun(generator, name, body.model, body.params)
    return await json_answer(request, chains.invoke(run, body.input), _same, _model)


@router.post("/{name}/batch", response_model=None)
async def batch(name: str, body: ChainBatchRequest, request: Request, generator: GeneratorDep) -> Response:
    run = chains.ChainRun(generator, name, body.model, body.params)
    return await json_answer(request, chains.batch(run, body.inputs), _same, _model)


@router.post("/{name}/stream", response_model=None)
async def stream(name: str, body: ChainRequest, generator: GeneratorDep, settings: SettingsDep) -> EventSourceResponse:
    run = chains.ChainRun(generator, name, body.model, body.params)
    return await sse_answer(chains.ChainStream(run, body.input), settings.sse_ping_seconds, lambda: run.model)


@router.post("/{name}/stream_log", response_model=None)
async def stream_log(
    name: str, body: ChainStreamRequest, generator: GeneratorDep, settings: SettingsDep
) -> EventSourceResponse:
    if body.diff is False:
        raise InvalidRequest("stream_log sends run-log patches only: leave `diff` out or send true", param="diff")
    return await _stream(name, body, generator, settings, "stream_log")


@router.post("/{name}/stream_events", response_model=None)
async def stream_events(
    name: str, body: ChainStreamRequest, generator: GeneratorDep, settings: SettingsDep
) -> EventSourceResponse:
    return await _stream(name, body, generator, settings, "stream_events")


@router.get("/{name}/input_schema")
async def input_schema(name: str, registry: RegistryDep) -> dict[str, Any]:
    return chains.schema(registry, name, "input")


@router.get("/{name}/output_schema")
async def output_schema(name: str, registry: RegistryDep) -> dict[str, Any]:
    return chains.schema(registry, name, "output")


@router.get("/{name}/config_schema")
async def config_schema(name: str, registry: RegistryDep) -> dict[str, Any]:
    return chains.schema(registry, name, "config")


async def _stream(
    name: str, body: ChainStreamRequest, generator: GeneratorDep, settings: SettingsDep, kind: str
) -> EventSourceResponse:
    run = chains.ChainRun(generator, name, body.model, body.params)
    filters = chains.StreamFilters(
        **body.model_dump(include={f.name for f in dataclasses.fields(chains.StreamFilters)})
    )
    events = chains.ChainStream(run, body.input, kind, filters)
    return await sse_answer(events, settings.sse_ping_seconds, lambda: run.model)


def _same(result: dict[str, Any]) -> dict[str, Any]:
    return result


def _model(result: dict[str, Any]) -> str:
    return str(result["model"])
