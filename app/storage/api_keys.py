"""API keys in the database (the `api_keys` table): what the CLI and the service do with them.

Only the SHA-256 of a key is stored, with a short display prefix (`sk-slw-AbCdE`) so an operator can
tell keys apart. Revoking sets `revoked_at`; rows are never deleted, so the table also answers "did
any key ever exist?", which keeps auth on after the last key is revoked. Names are unique among
active keys; a new key may take a revoked key's name, but not its conversations, which belong to the
key's id (`db:<n>`): `rotate_key` replaces a key and hands its conversations to the new one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.auth.keyring import Loader, Snapshot
from app.auth.keys import Identity, display_prefix, generate_key, hash_key
from app.core.config import Settings
from app.storage.db import Database, make_engine
from app.storage.tables import api_keys, chat_sessions, responses


class KeyNameTaken(ValueError):
    pass


@dataclass(frozen=True)
class KeyRecord:
    """A key as `keys list` shows it: never the key, never the hash."""

    id: int
    name: str
    prefix: str
    rpm: int | None
    tpm: int | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _record(row: Any) -> KeyRecord:
    return KeyRecord(**{field.name: getattr(row, field.name) for field in fields(KeyRecord)})


async def create_key(
    conn: AsyncConnection, *, name: str, rpm: int | None = None, tpm: int | None = None
) -> tuple[str, KeyRecord]:
    """A new key (returned once, never stored) and its record."""
    taken = await conn.scalar(
        select(func.count()).select_from(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
    )
    if taken:
        raise KeyNameTaken(f"an active key named {name!r} exists; revoke it first or choose another name")
    key = generate_key()
    now = datetime.now(UTC)
    result = await conn.execute(
        api_keys.insert().values(
            name=name, key_hash=hash_key(key), prefix=display_prefix(key), rpm=rpm, tpm=tpm, created_at=now
        )
    )
    key_id = result.inserted_primary_key[0] if result.inserted_primary_key else 0
    return key, KeyRecord(key_id, name, display_prefix(key), rpm, tpm, now, None)


async def list_keys(conn: AsyncConnection) -> list[KeyRecord]:
    rows = await conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id))
    return [_record(row) for row in rows]


async def revoke_key(conn: AsyncConnection, *, name: str) -> bool:
    """Revoke the active key with this name; False when there is none."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)


async def load_snapshot(conn: AsyncConnection) -> Snapshot:
    """What the service needs: whether any key ever existed, and the active keys by hash."""
    rows = (
        await conn.execute(
            select(api_keys.c.id, api_keys.c.name, api_keys.c.key_hash, api_keys.c.rpm, api_keys.c.tpm).where(
                api_keys.c.revoked_at.is_(None)
            )
        )
    ).all()
    any_keys = bool(rows) or bool(await conn.scalar(select(func.count()).select_from(api_keys)))
    active = {
        row.key_hash: Identity(name=row.name, key_id=f"db:{row.id}", rpm=row.rpm, tpm=row.tpm, source="database")
        for row in rows
    }
    return Snapshot(any_keys=any_keys, active=active)


async def _has_keys(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        try:
            return bool(await conn.scalar(select(func.count()).select_from(api_keys)))
        except Exception:  # the table is not there yet (migrations not applied): no keys
            has_table = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "api_keys"))
            if has_table:
                raise
            return False


def database_has_keys(settings: Settings) -> bool:
    """At start-up (no event loop yet): does any key exist? Unreachable database: assume yes (fail closed)."""

    async def check() -> bool:
        engine = make_engine(settings)
        try:
            return await asyncio.wait_for(_has_keys(engine), timeout=settings.db_timeout_s)
        except Exception:
            return True
        finally:
            await engine.dispose()

    return asyncio.run(check())


def snapshot_loader(db: Database) -> Loader:
    """The key ring's loader for a running service, on the service's one database engine."""

    async def load() -> Snapshot:
        async with db.engine.connect() as conn:
            try:
                return await asyncio.wait_for(load_snapshot(conn), timeout=db.timeout_s)
            except Exception:
                has_table = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "api_keys"))
                if has_table:
                    raise
                return Snapshot(any_keys=False)

    return load


async def rotate_key(conn: AsyncConnection, *, name: str) -> tuple[str, KeyRecord, int]:
    """Replace the active key named `name` by a new one with the same name and limits, in one
    transaction; its conversations and stored responses move to the new key. Returns the key, its record and how many
    conversations moved. KeyError when no active key has that name."""
    old = (await conn.execute(select(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None)))).first()
    if old is None:
        raise KeyError(name)
    await conn.execute(update(api_keys).where(api_keys.c.id == old.id).values(revoked_at=datetime.now(UTC)))
    key, record = await create_key(conn, name=name, rpm=old.rpm, tpm=old.tpm)
    moved = await conn.execute(
        update(chat_sessions).where(chat_sessions.c.identity == f"db:{old.id}").values(identity=f"db:{record.id}")
    )
    await conn.execute(
        update(responses).where(responses.c.identity == f"db:{old.id}").values(identity=f"db:{record.id}")
    )
    return key, record, moved.rowcount or 0
