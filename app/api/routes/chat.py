"""POST /v1/chat/completions (OpenAI's contract), and the legacy POST /v1/completions."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.answers import Streamed, json_answer, sse_answer
from app.api.deps import CompletionsDep, SettingsDep, TextCompletionsDep
from app.api.routing import SlipwayRoute
from app.protocol.openai import ChatCompletionRequest, CompletionRequest
from app.services.completions import Prepared
from app.services.events import Finished

router = APIRouter(prefix="/v1", tags=["openai"], route_class=SlipwayRoute)


class ModelStream(Streamed, Protocol):
    @property
    def model(self) -> str: ...


class Answerer(Protocol):
    """`Completions` and `TextCompletions`: the same three steps, two shapes."""

    async def complete(self, prepared: Prepared) -> tuple[dict[str, Any], Finished]: ...

    def stream(self, prepared: Prepared) -> ModelStream: ...


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, completions: CompletionsDep, settings: SettingsDep
) -> Response:
    return await _answer(completions, completions.prepare(body), bool(body.stream), request, settings.sse_ping_seconds)


@router.post("/completions", response_model=None)
async def completions_legacy(
    body: CompletionRequest, request: Request, completions: TextCompletionsDep, settings: SettingsDep
) -> Response:
    return await _answer(completions, completions.prepare(body), bool(body.stream), request, settings.sse_ping_seconds)


async def _answer(service: Answerer, prepared: Prepared, stream: bool, request: Request, ping_s: float) -> Response:
    if not stream:
        return await json_answer(request, service.complete(prepared), lambda r: r[0], lambda r: r[1].model)
    events = service.stream(prepared)
    return await sse_answer(events, ping_s, lambda: events.model)
