"""One turn at a time per conversation, in this process and across replicas.

Two messages posted at once to one session must be answered one after the other, each seeing the
other's turn in its history. Within a process an `asyncio.Lock` per session queues turns in arrival
order (asyncio locks are FIFO). Across replicas, which only share a database when it is Postgres, a
session-level advisory lock keyed by the session id is held for the whole turn on a connection of its
own (in autocommit, so no transaction stays open while the model generates). Postgres releases the
lock by itself if that connection or its replica dies, so a crash never wedges a conversation.

SQLite serves one process (it is a file on one machine), so the process lock is the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.errors import APIError, Overloaded
from app.storage.db import Database, database_unavailable, is_outage

log = logging.getLogger(__name__)

#: First half of the two-int advisory lock key: Slipway's conversations (any constant unlikely to clash).
LOCK_NAMESPACE = 0x534C5750  # "SLWP"
POLL_MIN_S = 0.02
POLL_MAX_S = 0.5


class SessionBusy(APIError):
    status_code = 409
    type = "conflict_error"
    code = "session_busy"


def lock_key(session_id: str) -> int:
    """A signed 32-bit key from the session id (a collision only serialises two conversations)."""
    return int.from_bytes(hashlib.blake2b(session_id.encode(), digest_size=4).digest(), "big", signed=True)


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class SessionLocks:
    """`max_connections`: advisory locks held at once on this replica, each on a pooled connection; one
    more is refused (429) rather than waiting on a pool that the rest of the service needs too."""

    def __init__(self, db: Database, wait_s: float, max_connections: int = 20) -> None:
        self.db = db
        self.wait_s = wait_s
        self.max_connections = max(1, max_connections)
        self._connections = 0
        self._entries: dict[str, _Entry] = {}

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session's turn lock; raises `SessionBusy` after `wait_s` waiting on another replica."""
        entry = self._entries.setdefault(session_id, _Entry())
        entry.users += 1
        try:
            async with entry.lock:
                if self.db.is_postgres:
                    async with self._advisory(session_id):
                        yield
                else:
                    yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._entries.pop(session_id, None)

    def held(self, session_id: str) -> bool:
        entry = self._entries.get(session_id)
        return entry is not None and entry.lock.locked()

    @contextlib.asynccontextmanager
    async def _advisory(self, session_id: str) -> AsyncIterator[None]:
        key = lock_key(session_id)
        if self._connections >= self.max_connections:
            raise Overloaded(
                f"{self._connections} conversation turns are running on this replica, its limit; retry shortly",
                code="turns_overloaded",
                headers={"Retry-After": "1"},
            )
        self._connections += 1
        try:
            async with self._advisory_on_a_connection(key):
                yield
        finally:
            self._connections -= 1

    @contextlib.asynccontextmanager
    async def _advisory_on_a_connection(self, key: int) -> AsyncIterator[None]:
        conn = await self._connect()
        try:
            await self._acquire(conn, key)
            try:
                yield
            finally:
                await _shielded(self._release(conn, key))
        finally:
            await _shielded(_close(conn))

    async def _connect(self) -> AsyncConnection:
        try:
            async with asyncio.timeout(self.db.timeout_s):
                conn = await self.db.engine.connect()
                return await conn.execution_options(isolation_level="AUTOCOMMIT")
        except Exception as exc:
            if is_outage(exc):
                raise database_unavailable() from None
            raise

    async def _acquire(self, conn: AsyncConnection, key: int) -> None:
        """Poll `pg_try_advisory_lock`: each try is a short statement under the database timeout, so a
        database that goes away while we wait gives a 503 instead of a connection stuck in a wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        delay = POLL_MIN_S
        while True:
            try:
                async with asyncio.timeout(self.db.timeout_s):
                    got = await conn.scalar(
                        text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": LOCK_NAMESPACE, "key": key}
                    )
            except Exception as exc:
                if is_outage(exc):
                    raise database_unavailable() from None
                raise
            if got:
                return
            if loop.time() + delay > deadline:
                raise SessionBusy(
                    "Another turn of this conversation is still running (on another replica); retry shortly.",
                    headers={"Retry-After": "5"},
                )
            await asyncio.sleep(delay)
            delay = min(POLL_MAX_S, delay * 2)

    async def _release(self, conn: AsyncConnection, key: int) -> None:
        try:
            async with asyncio.timeout(self.db.timeout_s):
                await conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": LOCK_NAMESPACE, "key": key})
        except Exception as exc:  # the connection is gone: so is its lock (Postgres drops it with the session)
            log.debug("advisory unlock failed (%s); invalidating the connection", type(exc).__name__)
            with contextlib.suppress(Exception):
                await conn.invalidate()


async def _close(conn: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await conn.close()


async def _shielded(coro: Awaitable[None]) -> None:
    """Finish a release even if the caller is being cancelled (a client that left mid-turn)."""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise
