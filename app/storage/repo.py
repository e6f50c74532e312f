"""Conversation CRUD: keyword-only functions on a connection the caller holds in a transaction.

Every function that reads or changes a session takes the owner's `identity` and filters on it, so a
session of another identity is simply not found (the API answers 404, never 403). Functions never
commit: the caller's `Database.transaction()` makes each write one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import chat_messages, chat_sessions


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    identity: str
    title: str | None
    model: str | None
    system_prompt: str | None
    temperature: float | None
    max_tokens: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Row[Any]) -> SessionRow:
        values: dict[str, Any] = {name: getattr(row, name) for name in cls.__slots__}
        values.update(created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: int
    session_id: str
    seq: int
    role: str
    content: str
    status: str
    reply_to: int | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int | None
    finish_reason: str | None
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Row[Any]) -> MessageRow:
        return cls(
            **{name: getattr(row, name) for name in cls.__slots__ if name != "created_at"},
            created_at=as_utc(row.created_at),
        )


# -- sessions ---------------------------------------------------------------------------------------


async def create_session(
    conn: AsyncConnection,
    *,
    session_id: str,
    identity: str,
    title: str | None,
    model: str | None,
    system_prompt: str | None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    now: datetime | None = None,
) -> SessionRow:
    now = now or utcnow()
    values = {
        "id": session_id,
        "identity": identity,
        "title": title,
        "model": model,
        "system_prompt": system_prompt,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(insert(chat_sessions).values(**values))
    return SessionRow(**values)  # type: ignore[arg-type]


async def get_session(conn: AsyncConnection, *, identity: str, session_id: str) -> SessionRow | None:
    row = (
        await conn.execute(
            select(chat_sessions).where(chat_sessions.c.id == session_id, chat_sessions.c.identity == identity)
        )
    ).first()
    return SessionRow.of(row) if row else None


async def list_sessions(
    conn: AsyncConnection, *, identity: str, limit: int, after: str | None = None, search: str | None = None
) -> tuple[list[SessionRow], bool]:
    """Newest first; `after` is the id of the last session of the previous page. Returns (page, has_more).

    Keyset paging on (created_at, id): pages stay stable while sessions are added or deleted.
    `search`: only sessions whose title or any message contains it (case-insensitive, literally: `%`
    and `_` are not wildcards).
    """
    query = select(chat_sessions).where(chat_sessions.c.identity == identity)
    if search:
        in_messages = (
            select(chat_messages.c.session_id)
            .where(chat_messages.c.content.icontains(search, autoescape=True))
            .where(chat_messages.c.session_id == chat_sessions.c.id)
            .exists()
        )
        query = query.where(or_(chat_sessions.c.title.icontains(search, autoescape=True), in_messages))
    if after is not None:
        anchor = (
            await conn.execute(
                select(chat_sessions.c.created_at, chat_sessions.c.id).where(
                    chat_sessions.c.id == after, chat_sessions.c.identity == identity
                )
            )
        ).first()
        if anchor is None:
            return [], False
        query = query.where(
            or_(
                chat_sessions.c.created_at < anchor.created_at,
                and_(chat_sessions.c.created_at == anchor.created_at, chat_sessions.c.id < anchor.id),
            )
        )
    query = query.order_by(chat_sessions.c.created_at.desc(), chat_sessions.c.id.desc()).limit(limit + 1)
    rows = [SessionRow.of(r) for r in await conn.execute(query)]
    return rows[:limit], len(rows) > limit


async def update_session(
    conn: AsyncConnection, *, identity: str, session_id: str, values: dict[str, Any]
) -> SessionRow | None:
    """Change a session's title, system prompt or sampling (None when it is not this identity's)."""
    if await get_session(conn, identity=identity, session_id=session_id) is None:
        return None
    await conn.execute(
        update(chat_sessions).where(chat_sessions.c.id == session_id).values(**values, updated_at=utcnow())
    )
    return await get_session(conn, identity=identity, session_id=session_id)


async def count_messages(conn: AsyncConnection, *, session_ids: list[str]) -> dict[str, int]:
    if not session_ids:
        return {}
    rows = await conn.execute(
        select(chat_messages.c.session_id, func.count())
        .where(chat_messages.c.session_id.in_(session_ids))
        .group_by(chat_messages.c.session_id)
    )
    return {session_id: count for session_id, count in rows}


async def delete_session(conn: AsyncConnection, *, identity: str, session_id: str) -> bool:
    """Delete a session and its messages (explicitly, not relying on ON DELETE CASCADE being enabled)."""
    owned = await get_session(conn, identity=identity, session_id=session_id)
    if owned is None:
        return False
    await conn.execute(delete(chat_messages).where(chat_messages.c.session_id == session_id))
    await conn.execute(delete(chat_sessions).where(chat_sessions.c.id == session_id))
    return True


# -- messages ---------------------------------------------------------------------------------------


async def list_messages(conn: AsyncConnection, *, session_id: str) -> list[MessageRow]:
    rows = await conn.execute(
        select(chat_messages).where(chat_messages.c.session_id == session_id).order_by(chat_messages.c.seq)
    )
    return [MessageRow.of(r) for r in rows]


async def delete_message(conn: AsyncConnection, *, session_id: str, message_id: int) -> None:
    """One message of a session (a regenerated answer's predecessor)."""
    await conn.execute(
        delete(chat_messages).where(chat_messages.c.session_id == session_id, chat_messages.c.id == message_id)
    )


async def add_message(
    conn: AsyncConnection,
    *,
    session_id: str,
    role: str,
    content: str,
    status: str = "complete",
    reply_to: int | None = None,
    model: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: int | None = None,
    finish_reason: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> MessageRow:
    """Append a message at the end of the conversation and mark the session active."""
    now = now or utcnow()
    last: int = (
        await conn.scalar(
            select(func.coalesce(func.max(chat_messages.c.seq), 0)).where(chat_messages.c.session_id == session_id)
        )
        or 0
    )
    seq = last + 1
    values: dict[str, Any] = {
        "session_id": session_id,
        "seq": seq,
        "role": role,
        "content": content,
        "status": status,
        "reply_to": reply_to,
        "model": model,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": latency_ms,
        "finish_reason": finish_reason,
        "error": error,
        "created_at": now,
    }
    message_id = (await conn.execute(insert(chat_messages).values(**values).returning(chat_messages.c.id))).scalar_one()
    await conn.execute(update(chat_sessions).where(chat_sessions.c.id == session_id).values(updated_at=now))
    return MessageRow(id=message_id, **values)


# -- retention --------------------------------------------------------------------------------------


async def delete_sessions(conn: AsyncConnection, *, session_ids: list[str]) -> int:
    if not session_ids:
        return 0
    await conn.execute(delete(chat_messages).where(chat_messages.c.session_id.in_(session_ids)))
    result = await conn.execute(delete(chat_sessions).where(chat_sessions.c.id.in_(session_ids)))
    return result.rowcount or 0


async def sessions_idle_since(conn: AsyncConnection, *, cutoff: datetime, limit: int) -> list[str]:
    """Ids of sessions with no activity since `cutoff`, oldest first."""
    rows = await conn.execute(
        select(chat_sessions.c.id)
        .where(chat_sessions.c.updated_at < cutoff)
        .order_by(chat_sessions.c.updated_at)
        .limit(limit)
    )
    return [r.id for r in rows]


async def sessions_over_quota(conn: AsyncConnection, *, max_sessions: int, limit: int) -> list[str]:
    """Ids of each identity's sessions beyond its `max_sessions` most recently active ones."""
    rank = (
        func.row_number()
        .over(
            partition_by=chat_sessions.c.identity,
            order_by=(chat_sessions.c.updated_at.desc(), chat_sessions.c.id.desc()),
        )
        .label("rank")
    )
    ranked = select(chat_sessions.c.id, rank).subquery()
    rows = await conn.execute(select(ranked.c.id).where(ranked.c.rank > max_sessions).limit(limit))
    return [r.id for r in rows]
