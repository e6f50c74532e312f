"""Chains over HTTP: GET /v1/chains, POST /v1/chains/{name}/invoke | /batch | /stream (SSE)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from app.api.answers import json_answer, sse_answer
from app.api.deps import GeneratorDep, RegistryDep, SettingsDep
from app.api.routing import SlipwayRoute
from app.protocol.chains import ChainBatchRequest, ChainRequest
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


def _same(result: dict[str, Any]) -> dict[str, Any]:
    return result


def _model(result: dict[str, Any]) -> str:
    return str(result["model"])
