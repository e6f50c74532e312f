"""Ollama's API (`/api/...` beside Slipway's `/api/sessions`): version, tags, show, ps, chat and
generate (NDJSON by default, one object with `stream: false`), embed; pulling and managing models answer a
clear error, since the models come from the models file. Errors are Ollama's `{"error": "..."}`
(`app.api.errors` picks the shape by path)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from app.api.answers import STREAM_HEADERS, json_answer
from app.api.deps import OllamaDep, SettingsDep
from app.api.responses import JSONResponse
from app.api.routing import AnyContentTypeRoute
from app.core.errors import InvalidRequest
from app.protocol import ollama
from app.protocol.ollama import ChatRequest, EmbedRequest, GenerateRequest, ShowRequest
from app.services.ollama import OllamaAnswer

router = APIRouter(prefix="/api", tags=["ollama"], route_class=AnyContentTypeRoute)

MANAGED = ("pull", "push", "create", "delete", "copy", "blobs/{digest}")


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": ollama.VERSION}


@router.get("/tags")
async def tags(service: OllamaDep) -> dict[str, Any]:
    return service.tags()


@router.get("/ps")
async def ps(service: OllamaDep) -> dict[str, Any]:
    return service.ps()


@router.post("/show")
async def show(body: ShowRequest, service: OllamaDep) -> dict[str, Any]:
    name = body.model or body.name
    if not name:
        raise InvalidRequest("model is required", param="model")
    return service.show(name)


@router.post("/chat", response_model=None)
async def chat(body: ChatRequest, request: Request, service: OllamaDep, settings: SettingsDep) -> Response:
    if not body.messages:  # Ollama: no messages only loads the model
        service.chat_handle(body.model)
        return JSONResponse(_loaded(body.model, {"message": {"role": "assistant", "content": ""}}))
    return await _answer(service.chat(body), body.stream, request, settings.sse_ping_seconds)


@router.post("/generate", response_model=None)
async def generate(body: GenerateRequest, request: Request, service: OllamaDep, settings: SettingsDep) -> Response:
    if not body.prompt and not body.system:  # Ollama: an empty prompt only loads the model
        service.chat_handle(body.model)
        return JSONResponse(_loaded(body.model, {"response": ""}))
    return await _answer(service.generate(body), body.stream, request, settings.sse_ping_seconds)


@router.post("/embed")
async def embed(body: EmbedRequest, service: OllamaDep) -> dict[str, Any]:
    return await service.embed(body)


@router.post("/embeddings")
async def embeddings(body: EmbedRequest, service: OllamaDep) -> dict[str, Any]:
    """The older endpoint: one `prompt`, one `embedding`."""
    answer = await service.embed(body)
    return {"embedding": answer["embeddings"][0] if answer["embeddings"] else []}


def _loaded(model: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "created_at": ollama.timestamp(), **content, "done": True, "done_reason": "load"}


async def _answer(answer: OllamaAnswer, stream: bool, request: Request, wait_s: float) -> Response:
    if not stream:
        return await json_answer(request, answer.whole(), lambda item: item, lambda _: answer.prepared.handle.name)
    await answer.first(wait_s)
    headers = {**STREAM_HEADERS, "X-Slipway-Model": answer.prepared.handle.name}
    return StreamingResponse(answer.lines(), media_type="application/x-ndjson", headers=headers)


def _managed(action: str) -> Any:
    async def refuse() -> Response:
        raise InvalidRequest(
            f"'{action}' is not available here: Slipway serves the entries of its models file "
            "(SLIPWAY_CONFIG); add a model there and restart the service",
            param="model",
        )

    return refuse


for _action in MANAGED:
    _verb = _action.split("/")[0]
    router.add_api_route(f"/{_action}", _managed(_verb), methods=["POST", "DELETE", "HEAD"], include_in_schema=False)
