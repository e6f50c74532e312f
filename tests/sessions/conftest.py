"""Fixtures for the conversation tests: a fresh database per server (a SQLite file, or a Postgres
database of its own created on the machine's server and dropped afterwards, so runs never collide),
the echo stand-in model, and real Slipway servers on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.servers import SlipwayServer, write_models_file
from tests.sessions.standin import EchoModel

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
SYSTEM = "You are a stand-in for tests."
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class Databases:
    """Hands out empty databases of one backend and removes them all at the end."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.tmp = tmp
        self.created: list[str] = []

    def new(self, port: int = PG_PORT) -> str:
        """A URL to an empty database (`port`: reach Postgres through a proxy on another port)."""
        name = f"slipway_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / name}.db"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{port}/{name}"

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module", params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def echo() -> Iterator[EchoModel]:
    with EchoModel() as model:
        yield model


def echo_models(echo: EchoModel, **extra: Any) -> list[dict[str, Any]]:
    """Entries: `recall` (default), `recall-slow` (30 ms a word), `slow` (60 words, 50 ms each), `cut`."""
    return [
        echo.entry("recall", "recall", system_prompt=SYSTEM, **extra),
        echo.entry("recall-slow", "recall-30", system_prompt=SYSTEM, **extra),
        echo.entry("slow", "slow-50", **extra),
        echo.entry("cut", "cut-3", **extra),
    ]


def start_server(
    tmp: Path, models: list[dict[str, Any]], database_url: str, *, wait_ready: bool = True, **env: str
) -> SlipwayServer:
    config = write_models_file(tmp, {"default_model": models[0]["name"], "models": models})
    server = SlipwayServer(config=config, env={"SLIPWAY_DATABASE_URL": database_url, **env}, wait_ready=wait_ready)
    return server.start()


@pytest.fixture(scope="module")
def server(databases: Databases, echo: EchoModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    """One server per backend on a database of its own, serving the echo stand-in."""
    tmp = tmp_path_factory.mktemp("server")
    s = start_server(tmp, echo_models(echo), databases.new())
    yield s
    s.stop()
    s.tmp.cleanup()


# -- small client helpers -------------------------------------------------------------------------------


def new_session(url: str, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    r = httpx.post(url + "/api/sessions", json=body, headers=headers or {}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def say(url: str, session_id: str, content: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}/api/sessions/{session_id}/messages", json={"content": content}, headers=headers or {}, timeout=60
    )


def messages(url: str, session_id: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/sessions/{session_id}", headers=headers or {}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def wait_for(check: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    """Poll until `check()` returns something truthy (a deadline, never a timing assertion)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
