"""Retention: a background task deletes conversations past the configured maximum age (no activity
for `retention_max_age_days`, and stored Responses API objects older than that) and, per identity, beyond the `retention_max_sessions` most recently
active ones. Both off by default: nothing is deleted unless an operator asks.

Deletes run in small batches, each its own transaction, so a sweep never holds a long lock; a sweep
that meets a database outage logs it and tries again at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from app.core.config import Settings
from app.core.errors import ServiceUnavailable
from app.storage import repo, responses
from app.storage.db import Database

log = logging.getLogger(__name__)

BATCH = 200


@dataclass(frozen=True)
class RetentionPolicy:
    max_age_days: float | None
    max_sessions: int | None
    interval_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.retention_max_age_days, settings.retention_max_sessions, settings.retention_interval_s)

    @property
    def enabled(self) -> bool:
        return self.max_age_days is not None or self.max_sessions is not None


async def sweep(db: Database, policy: RetentionPolicy) -> int:
    """One pass; returns how many sessions and stored responses were deleted."""
    deleted = 0
    if policy.max_age_days is not None:
        cutoff = repo.utcnow() - timedelta(days=policy.max_age_days)
        while True:
            async with db.transaction() as conn:
                ids = await repo.sessions_idle_since(conn, cutoff=cutoff, limit=BATCH)
                deleted += await repo.delete_sessions(conn, session_ids=ids)
            if len(ids) < BATCH:
                break
        while True:
            async with db.transaction() as conn:
                gone = await responses.remove_older_than(conn, cutoff=cutoff, limit=BATCH)
            deleted += gone
            if gone < BATCH:
                break
    if policy.max_sessions is not None:
        while True:
            async with db.transaction() as conn:
                ids = await repo.sessions_over_quota(conn, max_sessions=policy.max_sessions, limit=BATCH)
                deleted += await repo.delete_sessions(conn, session_ids=ids)
            if len(ids) < BATCH:
                break
    return deleted


async def run_retention(db: Database, policy: RetentionPolicy) -> None:
    """Sweep now, then every `interval_s`, until cancelled (at shutdown)."""
    while True:
        try:
            deleted = await sweep(db, policy)
            if deleted:
                log.info("retention: deleted %d conversations and responses", deleted)
        except ServiceUnavailable:
            log.warning("retention: database unavailable; next try in %.0f s", policy.interval_s)
        except Exception:
            log.exception("retention sweep failed")
        await asyncio.sleep(policy.interval_s)
