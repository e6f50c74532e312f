"""Chains over HTTP: GET /v1/chains, POST /v1/chains/{name}/invoke | /batch | /stream (SSE)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from app.api.cancellation import ClientDisconnected, until_disconnect
from app.api.deps import GeneratorDep, RegistryDep, SettingsDep
from app.api.responses import JSONResponse
from app.api.routing import SlipwayRoute
from app.protocol.chains import ChainBatchRequest, ChainRequest
from app.services import chains

router = APIRouter(prefix="/v1/chains", tags=["chains"], route_class=SlipwayRoute)

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.get("")
async def list_chains(registry: RegistryDep) -> dict:
    return chains.describe(registry)


@router.post("/{name}/invoke", response_model=None)
async def invoke(name: str, body: ChainRequest, request: Request, generator: GeneratorDep) -> Response:
    run = chains.ChainRun(generator, name, body.model, body.params)
    try:
        result = await until_disconnect(request, chains.invoke(run, body.input))
    except ClientDisconnected:
        return Response(status_code=499)
    return JSONResponse(result, headers={"X-Slipway-Model": result["model"]})


@router.post("/{name}/batch", response_model=None)
async def batch(name: str, body: ChainBatchRequest, request: Request, generator: GeneratorDep) -> Response:
    run = chains.ChainRun(generator, name, body.model, body.params)
    try:
        result = await until_disconnect(request, chains.batch(run, body.inputs))
    except ClientDisconnected:
        return Response(status_code=499)
    return JSONResponse(result, headers={"X-Slipway-Model": result["model"]})


@router.post("/{name}/stream", response_model=None)
async def stream(name: str, body: ChainRequest, generator: GeneratorDep, settings: SettingsDep) -> EventSourceResponse:
    run = chains.ChainRun(generator, name, body.model, body.params)
    events = chains.ChainStream(run, body.input)
    await events.first(settings.sse_ping_seconds)
    return EventSourceResponse(
        events.body(),
        headers={**STREAM_HEADERS, "X-Slipway-Model": run.model},
        ping=settings.sse_ping_seconds,
        client_close_handler_callable=lambda _msg: events.aclose(),
    )
