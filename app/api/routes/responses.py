"""OpenAI's Responses API (`/v1/responses`): create (JSON or the Responses event stream), retrieve,
delete, and list a stored response's input items. Responses belong to the caller's key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api.answers import json_answer, sse_answer
from app.api.deps import IdentityDep, ResponsesDep, SettingsDep
from app.api.routing import SlipwayRoute
from app.protocol.responses import ResponseCreateRequest

router = APIRouter(prefix="/v1/responses", tags=["openai"], route_class=SlipwayRoute)


@router.post("", response_model=None)
async def create_response(
    body: ResponseCreateRequest, request: Request, responses: ResponsesDep, identity: IdentityDep, settings: SettingsDep
) -> Response:
    prepared = await responses.prepare(body, identity)
    if not body.stream:
        return await json_answer(request, responses.complete(prepared), lambda r: r[0], lambda r: r[0]["model"])
    events = responses.stream(prepared)
    return await sse_answer(events, settings.sse_ping_seconds, lambda: events.model)


@router.get("/{response_id}")
async def get_response(response_id: str, responses: ResponsesDep, identity: IdentityDep) -> dict[str, Any]:
    return await responses.retrieve(identity, response_id)


@router.delete("/{response_id}")
async def delete_response(response_id: str, responses: ResponsesDep, identity: IdentityDep) -> dict[str, Any]:
    return await responses.delete(identity, response_id)


@router.get("/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    responses: ResponsesDep,
    identity: IdentityDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> dict[str, Any]:
    return await responses.input_items(identity, response_id, limit=limit, order=order, after=after)
