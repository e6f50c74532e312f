"""Conversations: create, list, read, delete and export sessions, and start turns (`turns.Turn`).

Every call takes the caller's identity and only ever sees that identity's sessions: a session of
someone else is "not found" (404), exactly like one that never existed, so ids reveal nothing.

What the model sees each turn: the session's system prompt (or the model entry's), then the stored
conversation cut to fit the context window (`history.fit_history`), then the new message. A turn
whose answer failed before its first token is left out of later histories (the model never answered
it, and the client usually asks again); a partial answer stays in, as the user saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

from langchain_core.messages import SystemMessage
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from app.protocol.sessions import (
    SessionCreate,
    SessionDeleted,
    SessionDetail,
    SessionOut,
    SessionPage,
    SessionUpdate,
)
from app.providers.registry import ModelRegistry
from app.services.generation import Generator
from app.services.transcript import (
    MAX_CONTENT_CHARS,
    check_content,
    conversation,
    known_id,
    message_out,
    new_session_id,
    not_found,
    refuse_nul,
    session_out,
)
from app.services.turns import Turn
from app.storage import repo
from app.storage.db import Database
from app.storage.locks import SessionLocks
from app.storage.repo import SessionRow

log = logging.getLogger(__name__)

#: Longest system prompt a session may set (characters).
MAX_SYSTEM_PROMPT_CHARS = 16_000
PAGE_MAX = 100


class SessionService:
    """The conversations of every identity, over one database."""

    def __init__(
        self,
        db: Database,
        generator: Generator,
        settings: Settings,
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.gate = gate  #: raises 503 while the schema is not ready (`Storage.ensure_schema`)
        self.generator = generator
        self.registry: ModelRegistry = generator.registry
        self.settings = settings
        # A turn waits at most as long as one generation may take before another replica frees the session.
        self.locks = SessionLocks(
            db,
            wait_s=settings.default_timeout_s + settings.default_first_token_timeout_s,
            max_connections=settings.db_pool_size + settings.db_max_overflow - 10,
        )
        self.turns: set[Turn] = set()  #: running turns, stopped (and their partials stored) at shutdown

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A database transaction, once the schema is known to be there."""
        if self.gate is not None:
            await self.gate()
        async with self.db.transaction() as conn:
            yield conn

    # -- sessions --------------------------------------------------------------------------------------

    async def create(self, identity: str, new: SessionCreate) -> SessionOut:
        model, system_prompt, title = new.model, new.system_prompt, new.title
        refuse_nul(system_prompt, "system_prompt")
        refuse_nul(title, "title")
        if model is not None:
            self.registry.chat(model)  # 404 model_not_found (400 for an embedding model), as under /v1
        if system_prompt is not None and len(system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
            raise PayloadTooLarge(
                f"The system prompt is {len(system_prompt)} characters; the limit is {MAX_SYSTEM_PROMPT_CHARS}.",
                param="system_prompt",
            )
        async with self.transaction() as conn:
            row = await repo.create_session(
                conn,
                session_id=new_session_id(),
                identity=identity,
                title=title,
                model=model,
                system_prompt=system_prompt,
                temperature=new.temperature,
                max_tokens=new.max_tokens,
            )
        return session_out(row)

    async def page(self, identity: str, *, limit: int, after: str | None, search: str | None = None) -> SessionPage:
        refuse_nul(after, "after")
        refuse_nul(search, "q")
        async with self.transaction() as conn:
            rows, has_more = await repo.list_sessions(
                conn, identity=identity, limit=min(limit, PAGE_MAX), after=after, search=search
            )
            counts = await repo.count_messages(conn, session_ids=[r.id for r in rows])
        data = [session_out(r, counts.get(r.id, 0)) for r in rows]
        return SessionPage(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )

    async def get(self, identity: str, session_id: str) -> SessionDetail:
        async with self.transaction() as conn:
            row = await repo.get_session(conn, identity=identity, session_id=known_id(session_id))
            if row is None:
                raise not_found(session_id)
            messages = await repo.list_messages(conn, session_id=session_id)
        return SessionDetail(
            **session_out(row, len(messages)).model_dump(), messages=[message_out(m) for m in messages]
        )

    async def require(self, identity: str, session_id: str) -> SessionRow:
        async with self.transaction() as conn:
            row = await repo.get_session(conn, identity=identity, session_id=known_id(session_id))
        if row is None:
            raise not_found(session_id)
        return row

    async def update(self, identity: str, session_id: str, change: SessionUpdate) -> SessionOut:
        values = change.model_dump(exclude_unset=True)
        if not values:
            raise InvalidRequest(
                "Give `title`, `system_prompt`, `temperature` or `max_tokens` to change.", code="invalid_value"
            )
        refuse_nul(values.get("title"), "title")
        refuse_nul(values.get("system_prompt"), "system_prompt")
        prompt = values.get("system_prompt")
        if prompt is not None and len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
            raise PayloadTooLarge(
                f"The system prompt is {len(prompt)} characters; the limit is {MAX_SYSTEM_PROMPT_CHARS}.",
                param="system_prompt",
            )
        async with self.transaction() as conn:
            row = await repo.update_session(conn, identity=identity, session_id=known_id(session_id), values=values)
            if row is None:
                raise not_found(session_id)
            count = (await repo.count_messages(conn, session_ids=[row.id])).get(row.id, 0)
        return session_out(row, count)

    async def delete(self, identity: str, session_id: str) -> SessionDeleted:
        async with self.transaction() as conn:
            if not await repo.delete_session(conn, identity=identity, session_id=known_id(session_id)):
                raise not_found(session_id)
        return SessionDeleted(id=session_id)

    # -- turns -----------------------------------------------------------------------------------------

    def content_limit(self, session: SessionRow) -> int:
        spec = self.registry.get(session.model).spec
        return min(MAX_CONTENT_CHARS, spec.max_prompt_chars or MAX_CONTENT_CHARS)

    async def start_turn(self, identity: str, session_id: str, content: str) -> Turn:
        """Validate (400/413/404) and start a turn running in a task of its own; see `turns.Turn`."""
        check_content(content)
        session = await self.require(identity, session_id)
        check_content(content, self.content_limit(session))
        turn = Turn(self, identity=identity, session_id=session_id, content=content, model=session.model)
        turn.start()
        return turn

    async def regenerate(self, identity: str, session_id: str) -> Turn:
        """Answer the last question again (404 for no such session; 400, from the turn, for no answer
        to replace); the new answer replaces the previous one, see `turns.Turn`."""
        session = await self.require(identity, session_id)
        turn = Turn(self, identity=identity, session_id=session_id, model=session.model, regenerate=True)
        turn.start()
        return turn

    def queue_place(self, model: str | None) -> AbstractContextManager[None]:
        """A place in the model's queue for a turn, taken before its session lock (see `Slots.place`)."""
        return self.registry.get(model).slots.place()

    async def stop_all(self, grace_s: float = 10.0) -> None:
        """Shutdown: stop every running turn and let each store its partial answer."""
        running = list(self.turns)
        for turn in running:
            turn.cancel("shutting_down")
        tasks = [t.task for t in running if t.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    # -- export ----------------------------------------------------------------------------------------

    async def export(self, identity: str, session_id: str, *, include_incomplete: bool = False) -> list[dict[str, Any]]:
        """One evaluation case per stored answer, in the harness's dataset format (`eval.datasets`):
        `{"id", "messages": [...the conversation up to that user turn...], "reference": answer, "metadata"}`.
        """
        async with self.transaction() as conn:
            session = await repo.get_session(conn, identity=identity, session_id=known_id(session_id))
            if session is None:
                raise not_found(session_id)
            rows = await repo.list_messages(conn, session_id=session_id)
        system, source = self.system_prompt(session)
        head = [{"role": "system", "content": system}] if system else []
        cases = []
        for index, row in enumerate(rows):
            if row.role != "assistant" or not row.content:
                continue
            if row.status != "complete" and not include_incomplete:
                continue
            context = [{"role": r.role, "content": r.content} for r in conversation(rows[:index])]
            cases.append(
                {
                    "id": f"{session.id}-{row.id}",
                    "messages": [*head, *context],
                    "reference": row.content,
                    "metadata": {
                        "source": "slipway-session",
                        "session_id": session.id,
                        "session_title": session.title,
                        "message_id": row.id,
                        "reply_to": row.reply_to,
                        "model": row.model,
                        "status": row.status,
                        "finish_reason": row.finish_reason,
                        "prompt_tokens": row.prompt_tokens,
                        "completion_tokens": row.completion_tokens,
                        "latency_ms": row.latency_ms,
                        "created_at": row.created_at.isoformat(),
                        "system_prompt_source": source,
                    },
                }
            )
        return cases

    def system_prompt(self, session: SessionRow) -> tuple[str | None, str | None]:
        """The session's own system prompt, else its model entry's; and which one it is."""
        if session.system_prompt:
            return session.system_prompt, "session"
        try:
            spec = self.registry.get(session.model).spec
        except NotFound:
            return None, None
        return (spec.system_prompt, "model") if spec.system_prompt else (None, None)

    def system_message(self, session: SessionRow) -> SystemMessage | None:
        text, _ = self.system_prompt(session)
        return SystemMessage(text) if text else None
