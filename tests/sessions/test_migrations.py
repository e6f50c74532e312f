"""The schema: Alembic migrations applied by `python -m app db upgrade` and at start-up, on SQLite and
Postgres; they match the tables the code queries, go down and up again, adopt an `api_keys` table
made before they existed, and survive replicas migrating at once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.auth.keys import generate_key
from app.core.config import Settings
from app.storage import migrate
from app.storage.api_keys import create_key, list_keys
from app.storage.db import make_engine
from app.storage.tables import keys_metadata, metadata
from tests.servers import ROOT
from tests.sessions.conftest import BACKENDS, Databases, echo_models, start_server, wait_for
from tests.sessions.standin import EchoModel

TABLES = {"alembic_version", "api_keys", "chat_messages", "chat_sessions", "responses"}


@pytest.fixture(params=BACKENDS)
def dbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    databases = Databases(request.param, tmp_path)
    yield databases
    databases.drop_all()


def db_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["SLIPWAY_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "app", "db", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


def engine_for(url: str) -> AsyncEngine:
    return make_engine(Settings(database_url=url))


def test_db_upgrade_command(dbs: Databases) -> None:
    url = dbs.new()
    first = db_cli(url, "upgrade")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database upgraded: empty -> {migrate.head_revision()}"
    again = db_cli(url, "upgrade")
    assert again.returncode == 0 and again.stdout.strip() == f"database already at {migrate.head_revision()}"
    current = db_cli(url, "current")
    assert current.returncode == 0 and current.stdout.split()[1] == migrate.head_revision()

    async def check() -> None:
        engine = engine_for(url)
        try:
            assert await tables(engine) == TABLES
        finally:
            await engine.dispose()

    asyncio.run(check())


def test_db_commands_on_an_unreachable_database_fail_cleanly() -> None:
    url = "postgresql+asyncpg://postgres:s3cret-pass@127.0.0.1:1/nothing"
    for command in ("upgrade", "current"):
        done = db_cli(url, command)
        assert done.returncode == 1, done
        assert "cannot reach the database" in done.stderr and "Traceback" not in done.stderr
        assert "s3cret-pass" not in done.stdout + done.stderr


async def test_migrations_match_the_tables_and_go_down_and_up(dbs: Databases) -> None:
    engine = engine_for(await asyncio.to_thread(dbs.new))
    try:
        await migrate.upgrade(engine)
        combined = MetaData()
        for source in (metadata, keys_metadata):
            for table in source.tables.values():
                table.to_metadata(combined)

        def diff(sync: object) -> list:
            context = MigrationContext.configure(sync, opts={"compare_type": True})  # type: ignore[arg-type]
            return compare_metadata(context, combined)

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == [], "the migrations create exactly the tables the code queries"
        await migrate.downgrade(engine, "base")
        assert await tables(engine) == {"alembic_version"}
        assert await migrate.current(engine) is None
        await migrate.upgrade(engine)
        assert await tables(engine) == TABLES
    finally:
        await engine.dispose()


async def test_an_api_keys_table_made_before_the_migrations_is_adopted(dbs: Databases) -> None:
    engine = engine_for(await asyncio.to_thread(dbs.new))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(keys_metadata.create_all)
            await create_key(conn, name="early")
        before, after = await migrate.upgrade(engine)
        assert before is None and after == migrate.head_revision()
        async with engine.connect() as conn:
            assert [k.name for k in await list_keys(conn)] == ["early"], "existing keys are kept"
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_replicas_migrating_at_once_do_not_collide(tmp_path: Path) -> None:
    dbs = Databases("postgres", tmp_path)
    try:
        url = await asyncio.to_thread(dbs.new)
        engines = [create_async_engine(url) for _ in range(4)]
        results = await asyncio.gather(*(migrate.upgrade(e) for e in engines))
        assert sorted(before or "" for before, _ in results)[:1] == [""], "one replica migrated an empty database"
        assert {after for _, after in results} == {migrate.head_revision()}
        assert await tables(engines[0]) == TABLES
        for engine in engines:
            await engine.dispose()
    finally:
        await asyncio.to_thread(dbs.drop_all)


@pytest.mark.slow
def test_the_service_migrates_an_empty_database_at_start_up(dbs: Databases, echo: EchoModel, tmp_path: Path) -> None:
    url = dbs.new()
    server = start_server(tmp_path, echo_models(echo), url)
    try:
        assert httpx.get(server.url + "/readyz").json()["checks"]["database"] == {"ok": True}
        assert httpx.post(server.url + "/api/sessions").status_code == 201
    finally:
        server.stop()
        server.tmp.cleanup()
    assert db_cli(url, "current").returncode == 0, "the database is at the newest revision"


@pytest.mark.slow
def test_without_migrate_on_start_an_old_schema_is_not_ready(dbs: Databases, echo: EchoModel, tmp_path: Path) -> None:
    url = dbs.new()
    assert db_cli(url, "upgrade", "0001_conversations").returncode == 0
    key = generate_key()  # auth on by a static key, whatever the (old) database holds
    headers = {"Authorization": f"Bearer {key}"}
    server = start_server(
        tmp_path, echo_models(echo), url, wait_ready=False, SLIPWAY_MIGRATE_ON_START="false", SLIPWAY_API_KEYS=key
    )
    try:

        def readyz() -> httpx.Response | None:
            try:
                return httpx.get(server.url + "/readyz", timeout=5)
            except httpx.HTTPError:
                return None

        r = wait_for(readyz)
        assert r.status_code == 503 and "db upgrade" in r.json()["checks"]["database"]["detail"]
        refused = httpx.post(server.url + "/api/sessions", headers=headers)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "database_unavailable"
        assert db_cli(url, "upgrade").returncode == 0
        wait_for(lambda: httpx.get(server.url + "/readyz").status_code == 200)
        assert httpx.post(server.url + "/api/sessions", headers=headers).status_code == 201
    finally:
        server.stop()
        server.tmp.cleanup()


async def test_0003_moves_conversations_from_key_names_to_key_ids_and_back(dbs: Databases) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select, text

    from app.storage.tables import chat_sessions

    engine = engine_for(await asyncio.to_thread(dbs.new))
    try:
        await migrate.upgrade(engine, "0002_api_keys")
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            _, old = await create_key(conn, name="ana")
            await conn.execute(text("UPDATE api_keys SET revoked_at = :t WHERE id = :i"), {"t": now, "i": old.id})
            _, new = await create_key(conn, name="ana")  # the active one takes her conversations
            _, ben = await create_key(conn, name="ben")
            for sid, owner in [("s1", "ana"), ("s2", "ben"), ("s3", "anonymous"), ("s4", "static-0123abcd"),
                               ("s5", "nobody")]:  # fmt: skip
                await conn.execute(
                    chat_sessions.insert().values(id=sid, identity=owner, created_at=now, updated_at=now)
                )
        await migrate.upgrade(engine)

        async def owners() -> dict[str, str]:
            async with engine.connect() as conn:
                rows = await conn.execute(select(chat_sessions.c.id, chat_sessions.c.identity))
                return {r.id: r.identity for r in rows}

        assert await owners() == {
            "s1": f"db:{new.id}", "s2": f"db:{ben.id}", "s3": "anonymous", "s4": "static:0123abcd", "s5": "nobody",
        }  # fmt: skip
        await migrate.downgrade(engine, "0002_api_keys")
        assert await owners() == {"s1": "ana", "s2": "ben", "s3": "anonymous", "s4": "static-0123abcd", "s5": "nobody"}
    finally:
        await engine.dispose()
