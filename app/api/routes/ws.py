"""WebSocket turns: `/api/sessions/{id}/ws`, many turns on one socket.

Client -> server: `{"type": "message", "content": "..."}` | `{"type": "regenerate"}` | `{"type": "cancel"}`
Server -> client: `{"type": "delta", "content"}`... then `{"type": "done", "message_id", "usage", ...}`
                  (a regeneration's also has `replaced_message_id`, the answer it replaced);
                  `{"type": "error", "code", "message", "error": {...}}` for anything that went wrong.

Messages sent while a turn runs wait their turn (answered in order). A recoverable error (invalid JSON,
an empty or too long message, an unknown type, a failed generation, the database away) is an error
frame and the socket stays open. `cancel`, or closing the socket, stops the running generation; its
partial answer is stored marked incomplete (after `cancel` the client also gets its `done` frame, with
`status: "incomplete"`). An unknown session closes the socket with code 4404 after an error frame.
Authentication (a header, or a first `{"type": "auth", "key"}` frame) is the auth middleware's job;
the socket re-checks its key every few seconds (the key ring's refresh interval): once the key is
revoked, the running turn stops (stored incomplete), an error frame says why and the socket closes 4401.

Bounds: at most `INBOX_MAX` messages wait behind the running turn (more get an error frame
`queue_full` and are dropped, never stored); a frame is at most `SLIPWAY_MAX_BODY_BYTES` (uvicorn
closes a bigger one with 1009).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.api.deps import IdentityDep, KeyRingDep, SessionsDep
from app.api.routing import SlipwayRoute
from app.auth.keyring import REFRESH_S as KEY_CHECK_S
from app.core.errors import APIError, InvalidRequest, RateLimited, Unauthorized
from app.protocol.frames import error_frame
from app.services.sessions import SessionService
from app.services.transcript import check_content
from app.services.turns import Turn, TurnFailed, turn_frame

router = APIRouter(tags=["sessions"], route_class=SlipwayRoute)

#: Close code for an unknown session (4000-4999 are the application's; 4404 mirrors HTTP 404).
WS_NOT_FOUND = 4404
#: Close code for a key revoked while the socket was open (as the auth middleware's refusal).
WS_UNAUTHORIZED = 4401
#: Messages that may wait behind the running turn: one socket cannot queue hours of work.
INBOX_MAX = 8
_CLOSED = object()
_REGENERATE = object()


class SessionSocket:
    def __init__(self, websocket: WebSocket, sessions: SessionService, identity: str, session_id: str) -> None:
        self.ws = websocket
        self.sessions = sessions
        self.identity = identity
        self.session_id = session_id
        self.inbox: asyncio.Queue[object] = asyncio.Queue(maxsize=INBOX_MAX)
        self.current: Turn | None = None
        self._send_lock = asyncio.Lock()
        self.open = True

    async def send(self, frame: dict[str, Any]) -> None:
        if not self.open:
            return
        try:
            async with self._send_lock:
                await self.ws.send_text(orjson.dumps(frame).decode())
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.open = False

    async def read(self) -> None:
        """Read frames until the client leaves; messages go to the inbox, cancel acts at once."""
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("text")
                if raw is None:
                    try:
                        raw = (message.get("bytes") or b"").decode("utf-8")
                    except UnicodeDecodeError:
                        raw = ""
                await self.handle(raw)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.open = False
            if self.current is not None:
                self.current.cancel("client_disconnected")
            self._close_inbox()

    def _close_inbox(self) -> None:
        """Wake `serve()` to end, dropping what still waits (it was never stored)."""
        while True:
            try:
                self.inbox.put_nowait(_CLOSED)
                return
            except asyncio.QueueFull:
                self.inbox.get_nowait()

    async def watch_key(self, still_valid: Callable[[], bool], every_s: float) -> None:
        """Close the socket once its key is no longer accepted (revoked)."""
        while self.open:
            await asyncio.sleep(every_s)
            if still_valid():
                continue
            if self.current is not None:
                self.current.cancel("key_revoked")
            await self.send(error_frame(Unauthorized("The API key of this connection was revoked.")))
            self.open = False
            with contextlib.suppress(Exception):
                await self.ws.close(code=WS_UNAUTHORIZED, reason="invalid_api_key")
            self._close_inbox()
            return

    async def handle(self, raw: str) -> None:
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            await self.send(error_frame(InvalidRequest("The frame is not valid JSON.", code="invalid_json")))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "message":
            content = frame.get("content")
            if not isinstance(content, str):
                await self.send(
                    error_frame(InvalidRequest("`content` must be a string.", param="content", code="invalid_value"))
                )
                return
            try:
                check_content(content)
            except APIError as exc:
                await self.send(error_frame(exc))
                return
            await self.enqueue(content)
        elif kind == "regenerate":
            await self.enqueue(_REGENERATE)
        elif kind == "cancel":
            if self.current is not None:
                self.current.cancel("cancelled")
        else:
            await self.send(
                error_frame(
                    InvalidRequest(
                        f"Unknown frame type {kind!r}; expected 'message', 'regenerate' or 'cancel'.",
                        param="type",
                        code="unknown_type",
                    )
                )
            )

    async def enqueue(self, item: object) -> None:
        """A message or a regeneration waits behind the running turn (dropped, with an error frame, when
        `INBOX_MAX` already wait)."""
        try:
            self.inbox.put_nowait(item)
        except asyncio.QueueFull:
            await self.send(
                error_frame(
                    RateLimited(
                        f"{INBOX_MAX} messages are already waiting on this socket; this one was dropped. "
                        "Wait for the answers before sending more.",
                        code="queue_full",
                    )
                )
            )

    async def serve(self) -> None:
        """Answer the inbox's messages one at a time, in order."""
        while True:
            item = await self.inbox.get()
            if item is _CLOSED:
                return
            if self.open:  # messages still queued when the client left are not answered (nor stored)
                await self.turn(None if item is _REGENERATE else str(item))

    async def turn(self, content: str | None) -> None:
        """One turn: a message answered, or (`content` None) the last question answered again."""
        try:
            if content is None:
                turn = await self.sessions.regenerate(self.identity, self.session_id)
            else:
                turn = await self.sessions.start_turn(self.identity, self.session_id, content)
        except APIError as exc:
            await self.send(error_frame(exc))
            return
        self.current = turn
        if not self.open:
            turn.cancel("client_disconnected")
        try:
            async for event in turn.events():
                await self.send(turn_frame(event))
        except TurnFailed as exc:
            await self.send(error_frame(exc.error, exc.message_id))
        except APIError as exc:
            await self.send(error_frame(exc))
        finally:
            self.current = None


@router.websocket("/api/sessions/{session_id}/ws")
async def session_socket(
    websocket: WebSocket, session_id: str, sessions: SessionsDep, identity: IdentityDep, keyring: KeyRingDep
) -> None:
    await websocket.accept()
    socket = SessionSocket(websocket, sessions, identity, session_id)
    try:
        await sessions.require(identity, session_id)
    except APIError as exc:
        await socket.send(error_frame(exc))
        if exc.status_code == 404:
            with contextlib.suppress(Exception):
                await websocket.close(code=WS_NOT_FOUND, reason=exc.code or "")
            return
        # Anything else (the database away for a moment) is recoverable: every turn checks again.
    reader = asyncio.create_task(socket.read())
    watchers = [reader]
    key = websocket.scope.get("state", {}).get("api_key")
    if key is not None and key.source == "database":
        watchers.append(asyncio.create_task(socket.watch_key(lambda: keyring.still_valid(key), KEY_CHECK_S)))
    try:
        await socket.serve()
    finally:
        for task in watchers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if socket.current is not None:
            socket.current.cancel("client_disconnected")
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()
