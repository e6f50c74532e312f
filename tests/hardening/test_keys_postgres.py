"""Database keys on the machine's Postgres, reached through a TCP proxy the test cuts: while the
database is away, known keys keep working (from memory) and nothing hangs; once it is back, a
revocation made meanwhile takes effect. The test uses a database of its own, created and dropped
here; the Postgres service itself is never stopped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from app.storage.tables import keys_metadata as metadata
from tests.faults import TcpProxy
from tests.hardening.conftest import Upstream, bearer, server_with, upstream_model
from tests.servers import ROOT, SlipwayServer, write_models_file
from tests.sessions.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def database() -> Iterator[str]:
    name = f"slipway_keys_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create_tables() -> None:
        engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(create_tables())
    yield name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def keys(url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["SLIPWAY_DATABASE_URL"] = url
    done = subprocess.run(
        [sys.executable, "-m", "app", "keys", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_keys_survive_a_database_cut(database: str, upstream: Upstream, tmp_path: Path) -> None:
    direct = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    alice = keys(direct, "create", "--name", "alice")
    bob = keys(direct, "create", "--name", "bob")
    with TcpProxy(5432) as proxy:
        via_proxy = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{database}"
        models = [upstream_model("fast", upstream, "words-1-0")]
        with server_with(tmp_path, models, SLIPWAY_DATABASE_URL=via_proxy, SLIPWAY_DB_TIMEOUT_S="1") as server:
            models_url = server.url + "/v1/models"
            assert httpx.get(models_url, headers=bearer(alice)).status_code == 200
            assert proxy.connections > 0, "the service reads its keys through the proxy"

            proxy.cut()
            keys(direct, "revoke", "bob")  # made while the service cannot see the database
            for _ in range(3):
                assert httpx.get(models_url, headers=bearer(alice), timeout=10).status_code == 200
                assert httpx.get(models_url, headers=bearer(bob), timeout=10).status_code == 200, "last known keys"
                wrong = httpx.get(models_url, headers=bearer("sk-slw-unknown"), timeout=10)
                assert wrong.status_code == 401, "an unknown key is refused without waiting for the database"
                time.sleep(2)
            assert "cannot read keys from the database" in server.log_text()

            proxy.restore()
            deadline = time.monotonic() + 30
            while httpx.get(models_url, headers=bearer(bob)).status_code != 401:
                assert time.monotonic() < deadline, "the revocation never took effect after the database returned"
                time.sleep(0.5)
            assert httpx.get(models_url, headers=bearer(alice)).status_code == 200
            assert "database reachable again" in server.log_text()


def test_a_public_bind_stays_closed_when_the_database_answers_late_and_empty(
    database: str, upstream: Upstream, tmp_path: Path
) -> None:
    """The Compose case: the app starts before Postgres and nobody has created a key yet. The start-up
    guard cannot know whether keys exist, so it lets the service start; auth must then stay on when the
    database answers with no keys (it used to turn off: 401 at first, 200 for everyone after)."""
    direct = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    with TcpProxy(5432) as proxy:
        proxy.cut()
        config = write_models_file(tmp_path, {"models": [upstream_model("fast", upstream, "words-1-0")]})
        env = {"SLIPWAY_DATABASE_URL": direct.replace(":5432/", f":{proxy.port}/"), "SLIPWAY_DB_TIMEOUT_S": "1"}
        server = SlipwayServer(config=config, env=env, args=["--host", "0.0.0.0"], wait_ready=False).start()
        try:
            wait_for(lambda: _answers(server.url + "/healthz"), timeout=90)
            assert httpx.get(server.url + "/v1/models").status_code == 401
            proxy.restore()
            wait_for(lambda: "database reachable again; 0 active keys" in server.log_text(), timeout=60)
            for r in (httpx.get(server.url + "/v1/models"), httpx.post(server.url + "/api/sessions", json={})):
                assert r.status_code == 401, r.text
                assert r.json()["error"]["code"] == "no_api_keys"
                assert "python -m app keys create" in r.json()["error"]["message"]
            key = keys(direct, "create", "--name", "ops")
            assert httpx.get(server.url + "/v1/models", headers=bearer(key)).status_code == 200
            assert httpx.get(server.url + "/v1/models").json()["error"]["code"] == "missing_api_key"
        finally:
            server.stop()
            server.tmp.cleanup()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
