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
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from app.providers.registry import ModelRegistry
from app.storage import repo
from app.storage.db import Database
from app.storage.locks import SessionLocks
from app.storage.repo import MessageRow, SessionRow

log = logging.getLogger(__name__)

#: Longest user message accepted (characters); a model entry's `max_prompt_chars` can lower it.
MAX_CONTENT_CHARS = 32_000
#: Longest system prompt a session may set (characters).
MAX_SYSTEM_PROMPT_CHARS = 16_000
PAGE_MAX = 100


# -- what the API returns ------------------------------------------------------------------------------


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class MessageOut(BaseModel):
    id: int
    object: Literal["session.message"] = "session.message"
    session_id: str
    role: Literal["user", "assistant"]
    content: str
    status: Literal["complete", "incomplete"] = Field(
        description="`incomplete`: generation failed, was cancelled or the client left; `content` is what was generated."
    )
    reply_to: int | None = Field(default=None, description="Assistant messages: the user message answered.")
    model: str | None = Field(default=None, description="The model that answered (after any fallback).")
    usage: UsageOut | None = None
    latency_ms: int | None = Field(default=None, description="From the start of generation to its end.")
    finish_reason: str | None = None
    error: str | None = Field(default=None, description="Why an answer is incomplete (an error code).")
    created_at: datetime

    @classmethod
    def of(cls, row: MessageRow) -> MessageOut:
        usage = None
        if row.prompt_tokens is not None and row.completion_tokens is not None:
            usage = UsageOut(
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                total_tokens=row.prompt_tokens + row.completion_tokens,
            )
        return cls(
            id=row.id,
            session_id=row.session_id,
            role=row.role,  # type: ignore[arg-type]
            content=row.content,
            status=row.status,  # type: ignore[arg-type]
            reply_to=row.reply_to,
            model=row.model,
            usage=usage,
            latency_ms=row.latency_ms,
            finish_reason=row.finish_reason,
            error=row.error,
            created_at=row.created_at,
        )


class SessionOut(BaseModel):
    id: str
    object: Literal["session"] = "session"
    title: str | None
    model: str | None = Field(description="The model entry used; null = the server's default model.")
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime = Field(description="Last activity.")
    message_count: int = 0

    @classmethod
    def of(cls, row: SessionRow, message_count: int = 0) -> SessionOut:
        return cls(
            id=row.id,
            title=row.title,
            model=row.model,
            system_prompt=row.system_prompt,
            created_at=row.created_at,
            updated_at=row.updated_at,
            message_count=message_count,
        )


class SessionDetail(SessionOut):
    messages: list[MessageOut]


class SessionPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionOut]
    first_id: str | None
    last_id: str | None = Field(description="Pass as `after` for the next page.")
    has_more: bool


class SessionDeleted(BaseModel):
    id: str
    object: Literal["session.deleted"] = "session.deleted"
    deleted: bool = True


# -- history as the model sees it ---------------------------------------------------------------------


def conversation(rows: Sequence[MessageRow]) -> list[MessageRow]:
    """The stored messages a model should see: failed turns (no answer text) left out."""
    out: list[MessageRow] = []
    for index, row in enumerate(rows):
        if row.role == "user":
            answer = rows[index + 1] if index + 1 < len(rows) else None
            if answer is not None and answer.role == "assistant" and not answer.content:
                continue
            out.append(row)
        elif row.content:
            out.append(row)
    return out


def to_messages(rows: Sequence[MessageRow]) -> list[BaseMessage]:
    return [HumanMessage(r.content) if r.role == "user" else AIMessage(r.content) for r in rows]


def not_found(session_id: str) -> NotFound:
    return NotFound(f"No session with id {session_id!r}.", param="session_id", code="session_not_found")


def refuse_nul(value: str | None, param: str) -> None:
    """Postgres text cannot hold U+0000 (SQLite can): refuse it on both, so both databases answer alike."""
    if value is not None and "\x00" in value:
        raise InvalidRequest(
            f"'{param}' contains a NUL character (U+0000), which cannot be stored.", param=param, code="invalid_value"
        )


def known_id(session_id: str) -> str:
    """A session id as the database can look it up: one with NUL in it exists nowhere (404, as on SQLite)."""
    if "\x00" in session_id:
        raise not_found(session_id)
    return session_id


def check_content(content: str, limit: int = MAX_CONTENT_CHARS) -> str:
    """400 for an empty message or one with NUL, 413 for one over the limit: before anything is stored."""
    refuse_nul(content, "content")
    if not content.strip():
        raise InvalidRequest("The message content is empty.", param="content", code="empty_content")
    if len(content) > limit:
        raise PayloadTooLarge(
            f"The message is {len(content)} characters; the limit is {limit}.",
            param="content",
            code="content_too_long",
        )
    return content


def new_session_id() -> str:
    return uuid.uuid4().hex


class SessionService:
    """The conversations of every identity, over one database."""

    def __init__(
        self,
        db: Database,
        registry: ModelRegistry,
        settings: Settings,
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.gate = gate  #: raises 503 while the schema is not ready (`Storage.ensure_schema`)
        self.registry = registry
        self.settings = settings
        # A turn waits at most as long as one generation may take before another replica frees the session.
        self.locks = SessionLocks(
            db,
            wait_s=settings.default_timeout_s + settings.default_first_token_timeout_s,
            max_connections=settings.db_pool_size + settings.db_max_overflow - 10,
        )
        self.turns: set[Any] = set()  #: running `turns.Turn`s, stopped (and their partials stored) at shutdown

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A database transaction, once the schema is known to be there."""
        if self.gate is not None:
            await self.gate()
        async with self.db.transaction() as conn:
            yield conn

    # -- sessions --------------------------------------------------------------------------------------

    async def create(
        self, identity: str, *, model: str | None, system_prompt: str | None, title: str | None
    ) -> SessionOut:
        refuse_nul(system_prompt, "system_prompt")
        refuse_nul(title, "title")
        if model is not None:
            self.registry.get(model)  # 404 model_not_found, as under /v1
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
            )
        return SessionOut.of(row)

    async def page(self, identity: str, *, limit: int, after: str | None) -> SessionPage:
        refuse_nul(after, "after")
        async with self.transaction() as conn:
            rows, has_more = await repo.list_sessions(conn, identity=identity, limit=min(limit, PAGE_MAX), after=after)
            counts = await repo.count_messages(conn, session_ids=[r.id for r in rows])
        data = [SessionOut.of(r, counts.get(r.id, 0)) for r in rows]
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
            **SessionOut.of(row, len(messages)).model_dump(), messages=[MessageOut.of(m) for m in messages]
        )

    async def require(self, identity: str, session_id: str) -> SessionRow:
        async with self.transaction() as conn:
            row = await repo.get_session(conn, identity=identity, session_id=known_id(session_id))
        if row is None:
            raise not_found(session_id)
        return row

    async def delete(self, identity: str, session_id: str) -> SessionDeleted:
        async with self.transaction() as conn:
            if not await repo.delete_session(conn, identity=identity, session_id=known_id(session_id)):
                raise not_found(session_id)
        return SessionDeleted(id=session_id)

    # -- turns -----------------------------------------------------------------------------------------

    def content_limit(self, session: SessionRow) -> int:
        spec = self.registry.get(session.model).spec
        return min(MAX_CONTENT_CHARS, spec.max_prompt_chars or MAX_CONTENT_CHARS)

    async def start_turn(self, identity: str, session_id: str, content: str) -> Any:
        """Validate (400/413/404) and start a turn running in a task of its own; see `turns.Turn`."""
        from app.services.turns import Turn

        check_content(content)
        session = await self.require(identity, session_id)
        check_content(content, self.content_limit(session))
        turn = Turn(self, identity=identity, session_id=session_id, content=content, model=session.model)
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
