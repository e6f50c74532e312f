"""POST /v1/chat/completions (OpenAI's contract)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from app.api.cancellation import ClientDisconnected, until_disconnect
from app.api.deps import RegistryDep, SettingsDep
from app.api.responses import JSONResponse
from app.api.routing import SlipwayRoute
from app.protocol import ChatCompletionRequest
from app.services import completions

router = APIRouter(prefix="/v1", tags=["openai"], route_class=SlipwayRoute)

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, registry: RegistryDep, settings: SettingsDep
) -> Response:
    prepared = completions.prepare(registry, body)
    if not body.stream:
        try:
            result, finished = await until_disconnect(request, completions.complete(registry, body, prepared))
        except ClientDisconnected:
            return Response(status_code=499)
        request.state.usage = finished.usage
        return JSONResponse(result, headers={"X-Slipway-Model": finished.model})
    stream = completions.ChatStream(registry, body, prepared)
    await stream.first(settings.sse_ping_seconds)
    request.state.chat_stream = stream
    return EventSourceResponse(
        stream.body(),
        headers={**STREAM_HEADERS, "X-Slipway-Model": stream.model},
        ping=settings.sse_ping_seconds,
        client_close_handler_callable=lambda _msg: stream.aclose(),
    )
