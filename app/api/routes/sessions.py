"""The native chat API: conversations kept by the server (`/api/sessions`).

POST   /api/sessions                     create          GET    /api/sessions              list (newest first)
GET    /api/sessions/{id}                read + messages  DELETE /api/sessions/{id}         delete
POST   /api/sessions/{id}/messages       one turn (JSON, or SSE with ?stream=true)
POST   /api/sessions/{id}/regenerate     the last question answered again (replaces its answer)
PATCH  /api/sessions/{id}                title, system prompt, temperature, max_tokens
GET    /api/sessions/{id}/export         JSONL evaluation cases
WS     /api/sessions/{id}/ws             turns over a WebSocket (`ws.py`)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api.answers import sse_answer
from app.api.cancellation import ClientDisconnected, until_disconnect
from app.api.deps import IdentityDep, SessionsDep, SettingsDep
from app.api.responses import JSONResponse
from app.api.routing import SlipwayRoute
from app.core.config import Settings
from app.core.errors import APIError
from app.protocol.frames import error_frame
from app.protocol.sessions import (
    MessageCreate,
    MessageOut,
    SessionCreate,
    SessionDeleted,
    SessionDetail,
    SessionOut,
    SessionPage,
    SessionUpdate,
)
from app.services.events import Delta
from app.services.first_event import FirstEvent
from app.services.turns import Turn, TurnDone, TurnFailed, turn_frame

router = APIRouter(prefix="/api/sessions", tags=["sessions"], route_class=SlipwayRoute)

#: One server-sent event: a JSON frame (`delta`, `done`, `error`), and `[DONE]` last.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string", "pattern": "^(\\[DONE\\]|\\{[\\s\\S]*\\})$"}},
}


def failure(exc: TurnFailed) -> APIError:
    """A failed turn as an HTTP error that names the stored partial answer."""
    error = exc.error
    if exc.message_id is not None:
        error.headers = {**error.headers, "X-Slipway-Message-Id": str(exc.message_id)}
    return error


# -- routes ------------------------------------------------------------------------------------------


@router.post("", status_code=201, response_model=SessionOut)
async def create_session(sessions: SessionsDep, identity: IdentityDep, body: SessionCreate | None = None) -> SessionOut:
    body = body or SessionCreate()
    return await sessions.create(identity, body)


@router.get("", response_model=SessionPage)
async def list_sessions(
    sessions: SessionsDep,
    identity: IdentityDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Sessions per page.")] = 20,
    after: Annotated[str | None, Query(max_length=64, description="`last_id` of the previous page.")] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Only sessions whose title or messages contain this."),
    ] = None,
) -> SessionPage:
    return await sessions.page(identity, limit=limit, after=after, search=q)


@router.get("/{session_id}", response_model=SessionDetail)
async def get_session(session_id: str, sessions: SessionsDep, identity: IdentityDep) -> SessionDetail:
    return await sessions.get(identity, session_id)


@router.patch("/{session_id}", response_model=SessionOut)
async def update_session(
    session_id: str, body: SessionUpdate, sessions: SessionsDep, identity: IdentityDep
) -> SessionOut:
    """Rename a conversation or change its system prompt."""
    return await sessions.update(identity, session_id, body)


@router.delete("/{session_id}", response_model=SessionDeleted)
async def delete_session(session_id: str, sessions: SessionsDep, identity: IdentityDep) -> SessionDeleted:
    return await sessions.delete(identity, session_id)


@router.post(
    "/{session_id}/messages",
    response_model=MessageOut,
    responses={
        200: {
            "description": "The stored answer; with `stream=true`, server-sent events: `delta` frames, one "
            "`done` frame (or `error`), then `[DONE]`.",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
        409: {"description": "Another replica is still running a turn of this session (Retry-After)."},
    },
)
async def post_message(
    session_id: str,
    body: MessageCreate,
    request: Request,
    sessions: SessionsDep,
    identity: IdentityDep,
    settings: SettingsDep,
    stream: Annotated[bool, Query(description="Stream the answer as server-sent events.")] = False,
) -> Response:
    turn = await sessions.start_turn(identity, session_id, body.content)
    return await answer(turn, request, settings, stream)


@router.post(
    "/{session_id}/regenerate",
    response_model=MessageOut,
    responses={
        200: {
            "description": "The new answer to the last question, which replaced the previous one (its id is "
            "`replaced_message_id` in the `done` frame); with `stream=true`, server-sent events as for "
            "messages.",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        },
        400: {"description": "The conversation has no answer to regenerate (`nothing_to_regenerate`)."},
        409: {"description": "Another replica is still running a turn of this session (Retry-After)."},
    },
)
async def regenerate(
    session_id: str,
    request: Request,
    sessions: SessionsDep,
    identity: IdentityDep,
    settings: SettingsDep,
    stream: Annotated[bool, Query(description="Stream the answer as server-sent events.")] = False,
) -> Response:
    """Answer the last question again; the new answer replaces the previous one once it is stored."""
    turn = await sessions.regenerate(identity, session_id)
    return await answer(turn, request, settings, stream)


async def answer(turn: Turn, request: Request, settings: Settings, stream: bool) -> Response:
    """A running turn as the HTTP answer: the stored message as JSON (499 when the client left), or SSE."""
    if not stream:
        try:
            done = await until_disconnect(request, turn.result())
        except ClientDisconnected:
            turn.cancel("client_disconnected")
            return Response(status_code=499)
        except TurnFailed as exc:
            raise failure(exc) from None
        finally:
            if turn.phase != "done":
                turn.cancel("client_disconnected")
        return JSONResponse(done.message.model_dump(mode="json"), headers={"X-Slipway-Model": done.message.model or ""})
    return await sse_answer(TurnStream(turn), settings.sse_ping_seconds)


class JSONLResponse(Response):
    media_type = "application/x-ndjson"


@router.get(
    "/{session_id}/export",
    response_class=JSONLResponse,
    responses={200: {"description": "One evaluation case per answer (the harness's JSONL dataset format)."}},
)
async def export_session(
    session_id: str,
    sessions: SessionsDep,
    identity: IdentityDep,
    include_incomplete: Annotated[bool, Query(description="Also export answers marked incomplete.")] = False,
) -> JSONLResponse:
    cases = await sessions.export(identity, session_id, include_incomplete=include_incomplete)
    body = b"".join(orjson.dumps(case) + b"\n" for case in cases)
    return JSONLResponse(body, headers={"Content-Disposition": f'attachment; filename="session-{session_id}.jsonl"'})


class TurnStream:
    """A turn as SSE. `first()` waits (bounded) for the first event before headers are sent, so a turn
    that fails at once (404, 413, 429 queue full, 503) gets a real HTTP status, as under /v1."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.events: FirstEvent[Delta | TurnDone] = FirstEvent(turn.events())

    async def first(self, wait_s: float) -> None:
        try:
            await self.events.wait(wait_s)
        except TurnFailed as exc:
            raise failure(exc) from None

    async def body(self) -> AsyncIterator[bytes]:
        try:
            async for event in self.events:
                frame = turn_frame(event)
                yield _sse(frame)
        except TurnFailed as exc:
            yield _sse(error_frame(exc.error, exc.message_id))
        except APIError as exc:
            yield _sse(error_frame(exc))
        finally:
            if self.turn.phase != "done":
                self.turn.cancel("client_disconnected")
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        """The client went away: stop generating; the turn stores what it has."""
        self.turn.cancel("client_disconnected")
        await self.events.cancel()


def _sse(frame: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(frame) + b"\n\n"
