"""The database of a running service: built at app creation, migrated at start-up, probed by
/readyz, swept by retention, disposed at shutdown.

A database that is unreachable at start-up does not stop the service: migrations are retried in the
background (readiness says why it is not ready) and conversations answer 503 until they are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.logging import register_secrets
from app.storage import migrate
from app.storage.db import Database, database_unavailable, describe, is_outage
from app.storage.retention import RetentionPolicy, run_retention

log = logging.getLogger(__name__)

MIGRATE_RETRY_MAX_S = 30.0


class Storage:
    def __init__(self, settings: Settings) -> None:
        register_secrets([make_url(settings.database_url).password])
        self.settings = settings
        self.db = Database.from_settings(settings)
        self.schema_ready = False
        self.schema_detail: str | None = "migrations not applied yet"
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.settings.migrate_on_start:
            if not await self._migrate_once():
                self._tasks.append(asyncio.create_task(self._migrate_until_done()))
        else:
            await self._check_schema()
        policy = RetentionPolicy.from_settings(self.settings)
        if policy.enabled:
            self._tasks.append(asyncio.create_task(run_retention(self.db, policy)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.db.dispose()

    async def probe(self) -> tuple[bool, str | None]:
        """Readiness: the database answers, and its schema is at the newest migration."""
        ok, detail = await self.db.ping()
        if not ok:
            return ok, detail
        if not self.schema_ready and not self.settings.migrate_on_start:
            await self._check_schema()
        return (True, None) if self.schema_ready else (False, self.schema_detail)

    async def ensure_schema(self) -> None:
        """Before any query: 503 while the schema is not there yet (instead of a "no such table" 500)."""
        if not self.schema_ready and not self.settings.migrate_on_start:
            await self._check_schema()
        if not self.schema_ready:
            raise database_unavailable(self.schema_detail or "")

    async def _migrate_once(self) -> bool:
        try:
            async with asyncio.timeout(max(60.0, self.settings.db_timeout_s * 10)):
                before, after = await migrate.upgrade(self.db.engine)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.schema_detail = f"migrations pending: database unreachable ({describe(exc)})"
            log.warning("database unreachable at start-up; migrations will be retried (%s)", describe(exc))
            return False
        if before != after:
            log.info("database schema upgraded: %s -> %s", before or "empty", after)
        self.schema_ready, self.schema_detail = True, None
        return True

    async def _migrate_until_done(self) -> None:
        delay = 1.0
        while not await self._migrate_once():
            await asyncio.sleep(delay)
            delay = min(MIGRATE_RETRY_MAX_S, delay * 2)
        log.warning("database reachable; schema migrated")

    async def _check_schema(self) -> None:
        try:
            async with asyncio.timeout(self.settings.db_timeout_s):
                current = await migrate.current(self.db.engine)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return
        head = migrate.head_revision()
        if current == head:
            self.schema_ready, self.schema_detail = True, None
        else:
            self.schema_detail = f"schema at {current or 'nothing'}, expected {head}: run `python -m app db upgrade`"
