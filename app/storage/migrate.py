"""Alembic, configured in code (no alembic.ini to ship or lose): apply the migrations in
`app/storage/migrations` to an engine, at start-up or from `python -m app db upgrade`.

Several replicas may start at once against one Postgres: the upgrade runs in one transaction under a
transaction-level advisory lock, so one replica migrates and the others then find the schema at head.
Postgres DDL is transactional, so a failed upgrade leaves the schema as it was.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Advisory lock key (namespace, id) taken while migrating; the namespace is the one in locks.py.
MIGRATION_LOCK = (0x534C5750, 0)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema to `revision`; returns (before, after)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            namespace, lock_id = MIGRATION_LOCK
            await conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": namespace, "id": lock_id})
        before = await conn.run_sync(current_revision)
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
        after = await conn.run_sync(current_revision)
    return before, after


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)
