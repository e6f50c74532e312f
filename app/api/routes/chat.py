"""POST /v1/chat/completions (OpenAI's contract)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from app.api.cancellation import ClientDisconnected, until_disconnect
from app.api.deps import CompletionsDep, SettingsDep
from app.api.responses import JSONResponse
from app.api.routing import SlipwayRoute
from app.protocol.openai import ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["openai"], route_class=SlipwayRoute)

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, completions: CompletionsDep, settings: SettingsDep
) -> Response:
    prepared = completions.prepare(body)
    if not body.stream:
        try:
            result, finished = await until_disconnect(request, completions.complete(prepared))
        except ClientDisconnected:
            return Response(status_code=499)
        return JSONResponse(result, headers={"X-Slipway-Model": finished.model})
    stream = completions.stream(prepared)
    await stream.first(settings.sse_ping_seconds)
    return EventSourceResponse(
        stream.body(),
        headers={**STREAM_HEADERS, "X-Slipway-Model": stream.model},
        ping=settings.sse_ping_seconds,
        client_close_handler_callable=lambda _msg: stream.aclose(),
    )
