"""POST /v1/chat/completions (OpenAI's contract), and the legacy POST /v1/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.answers import json_answer, sse_answer
from app.api.deps import CompletionsDep, SettingsDep, TextCompletionsDep
from app.api.routing import SlipwayRoute
from app.protocol.openai import ChatCompletionRequest, CompletionRequest

router = APIRouter(prefix="/v1", tags=["openai"], route_class=SlipwayRoute)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, completions: CompletionsDep, settings: SettingsDep
) -> Response:
    prepared = completions.prepare(body)
    if not body.stream:
        return await json_answer(request, completions.complete(prepared), lambda r: r[0], lambda r: r[1].model)
    stream = completions.stream(prepared)
    return await sse_answer(stream, settings.sse_ping_seconds, lambda: stream.model)


@router.post("/completions", response_model=None)
async def completions_legacy(
    body: CompletionRequest, request: Request, completions: TextCompletionsDep, settings: SettingsDep
) -> Response:
    prepared = completions.prepare(body)
    if not body.stream:
        return await json_answer(request, completions.complete(prepared), lambda r: r[0], lambda r: r[1].model)
    stream = completions.stream(prepared)
    return await sse_answer(stream, settings.sse_ping_seconds, lambda: stream.model)
