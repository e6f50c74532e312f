"""The database: one pooled async engine per process (SQLite via aiosqlite, Postgres via asyncpg),
and the one way to use it: `async with db.transaction() as conn:`.

Why every use goes through `transaction()`: it bounds the whole transaction by `db_timeout_s` and
turns an unreachable, stalled or locked database into `ServiceUnavailable` (503 with Retry-After)
instead of a hang or a 500. A transaction that fails rolls back as a whole, so nothing is written
half-way. Recovery needs no restart: `pool_pre_ping` checks each pooled connection before use and
replaces the dead ones once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.core.config import Settings
from app.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)

#: Seconds a client is told to wait before retrying when the database is away.
RETRY_AFTER_S = 2


def database_unavailable(detail: str = "") -> ServiceUnavailable:
    message = "The database is unavailable or too slow right now; nothing was changed. Retry shortly."
    return ServiceUnavailable(
        message + (f" ({detail})" if detail else ""),
        code="database_unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def is_outage(exc: BaseException) -> bool:
    """A database that is down, unreachable, stalled or locked (as opposed to a bad query)."""
    if isinstance(exc, (TimeoutError, OSError, PoolTimeout, DisconnectionError, OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        # asyncpg's connection errors reach us wrapped in the adapter's generic Error class.
        cause = getattr(orig, "__cause__", None) or orig
        name = type(cause).__name__
        return isinstance(cause, (OSError, TimeoutError)) or name in {
            "ConnectionDoesNotExistError",
            "CannotConnectNowError",
            "ConnectionFailureError",
            "InterfaceError",
            "AdminShutdownError",
            "TooManyConnectionsError",
            "QueryCanceledError",
            "LockNotAvailableError",
        }
    return False


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def engine_options(settings: Settings) -> dict[str, Any]:
    """Pool and driver timeouts: no single wait on the database may outlast `db_timeout_s`."""
    timeout = settings.db_timeout_s
    if is_postgres(settings.database_url):
        return {
            "pool_pre_ping": True,
            "pool_timeout": timeout,
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "connect_args": {"timeout": timeout, "command_timeout": timeout},
        }
    return {"pool_pre_ping": True, "connect_args": {"timeout": timeout}}


def make_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(settings.database_url, **engine_options(settings))
    if engine.dialect.name == "sqlite":
        busy_ms = int(settings.db_timeout_s * 1000)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL: readers never wait for the writer; busy_timeout: a writer waits (bounded) for another;
            # foreign_keys: SQLite leaves ON DELETE CASCADE off unless asked, per connection.
            cursor = dbapi_conn.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={busy_ms}"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    return engine


class Database:
    """The engine plus the timeout and error policy every query runs under."""

    def __init__(self, engine: AsyncEngine, timeout_s: float) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self._failing = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(make_engine(settings), settings.db_timeout_s)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction, committed when the block ends, rolled back if it raises.

        Outages become `ServiceUnavailable` (logged once per outage, not once per request).
        """
        try:
            async with asyncio.timeout(self.timeout_s), self.engine.begin() as conn:
                yield conn
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._report(exc)
            raise database_unavailable() from None
        self._recovered()

    async def ping(self) -> tuple[bool, str | None]:
        """The readiness probe: can a pooled connection run `SELECT 1` within the timeout?"""
        try:
            async with self.transaction() as conn:
                await conn.execute(text("SELECT 1"))
        except ServiceUnavailable:
            return False, "unreachable or timing out"
        return True, None

    def _report(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.warning("database unavailable: %s", describe(exc))

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("database reachable again")

    async def dispose(self) -> None:
        await self.engine.dispose()


def describe(exc: BaseException) -> str:
    """A short, secret-free description: the exception class and first line (never the URL)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0][:200] if first else ''}"
