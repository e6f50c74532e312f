"""Stored Responses API objects: keyword-only functions on a connection the caller holds in a transaction.

As for conversations (`repo`), every read filters on the owner's identity, so another key's response
is simply not found (404), never 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.repo import as_utc, utcnow
from app.storage.tables import responses

#: How far back `previous_response_id` is followed: a chain longer than this is cut at its oldest
#: end (the context window would cut it anyway).
MAX_CHAIN = 500


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    previous_response_id: str | None
    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    created_at: datetime


def _row(row: Any) -> StoredResponse:
    return StoredResponse(
        id=row.id,
        previous_response_id=row.previous_response_id,
        body=orjson.loads(row.body),
        input_items=orjson.loads(row.input_items),
        created_at=as_utc(row.created_at),
    )


async def save(
    conn: AsyncConnection, *, identity: str, body: dict[str, Any], input_items: list[dict[str, Any]]
) -> None:
    await conn.execute(
        insert(responses).values(
            id=body["id"],
            identity=identity,
            previous_response_id=body.get("previous_response_id"),
            model=body["model"],
            status=body["status"],
            body=orjson.dumps(body).decode(),
            input_items=orjson.dumps(input_items).decode(),
            created_at=utcnow(),
        )
    )


async def get(conn: AsyncConnection, *, identity: str, response_id: str) -> StoredResponse | None:
    row = (
        await conn.execute(select(responses).where(responses.c.id == response_id, responses.c.identity == identity))
    ).first()
    return _row(row) if row is not None else None


async def chain(conn: AsyncConnection, *, identity: str, response_id: str) -> list[StoredResponse] | None:
    """The response and those it continues, oldest first; None when `response_id` is not this
    identity's. A link deleted since (or swept by retention) ends the chain there."""
    found: list[StoredResponse] = []
    next_id: str | None = response_id
    while next_id is not None and len(found) < MAX_CHAIN:
        stored = await get(conn, identity=identity, response_id=next_id)
        if stored is None:
            break
        found.append(stored)
        next_id = stored.previous_response_id
    if not found:
        return None
    return found[::-1]


async def remove(conn: AsyncConnection, *, identity: str, response_id: str) -> bool:
    done = await conn.execute(delete(responses).where(responses.c.id == response_id, responses.c.identity == identity))
    return bool(done.rowcount)


async def remove_older_than(conn: AsyncConnection, *, cutoff: datetime, limit: int) -> int:
    """Retention: up to `limit` responses created before `cutoff`."""
    ids = (
        (await conn.execute(select(responses.c.id).where(responses.c.created_at < cutoff).limit(limit))).scalars().all()
    )
    if not ids:
        return 0
    done = await conn.execute(delete(responses).where(responses.c.id.in_(ids)))
    return done.rowcount or 0
