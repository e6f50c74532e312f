"""Many conversation turns at once on Postgres: the ones beyond the model's queue get 429 before they
take a pooled connection (a turn holds one for its session's advisory lock), so the pool is never
exhausted: no 503, and another key's requests are served meanwhile. (40 concurrent turns used to give
37 x 503 `database_unavailable` and a 4.5 s wait for everyone else.)"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.sessions.conftest import Databases, start_server
from tests.sessions.standin import EchoModel

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DEPTH = 16


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Databases]:
    dbs = Databases("postgres", tmp_path)
    yield dbs
    dbs.drop_all()


async def connections_to(database: str) -> int:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await conn.close()


def test_forty_concurrent_turns_get_200_or_429_and_never_exhaust_the_pool(
    pg: Databases, echo: EchoModel, tmp_path: Path
) -> None:
    url = pg.new()
    database = url.rsplit("/", 1)[1]
    model = echo.entry("slow", "slow-10", concurrency=1, queue_depth=DEPTH)  # 60 words, 10 ms each
    server = start_server(tmp_path, [model], url)
    try:

        async def run() -> tuple[list[int], list[int], int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                ids = [(await client.post("/api/sessions", json={})).json()["id"] for _ in range(40)]
                turns = [asyncio.create_task(client.post(f"/api/sessions/{i}/messages", json={"content": "go"}))
                         for i in ids]  # fmt: skip
                await asyncio.sleep(0.3)
                peak = await connections_to(database)
                others = [(await client.get("/api/sessions?limit=5")).status_code for _ in range(5)]
                statuses = [r.status_code for r in await asyncio.gather(*turns)]
                return statuses, others, peak

        statuses, others, peak = asyncio.run(run())
        counts = Counter(statuses)
        assert set(counts) <= {200, 429}, counts  # never 503
        assert counts[200] >= 1 + DEPTH - 1 and counts[429] >= 40 - 1 - DEPTH, counts
        assert others == [200] * 5
        print(f"\n40 turns: {dict(counts)}; Postgres connections to the database at the peak: {peak}")
        # Within the documented pool (10 + 20 overflow) plus the key ring's loader, which still has an
        # engine of its own (issue #22: storage should own every table on one engine).
        assert peak <= 10 + 20 + 2
    finally:
        server.stop()
        server.tmp.cleanup()


def test_turns_on_a_wide_model_are_capped_by_the_pool_not_the_queue(
    pg: Databases, echo: EchoModel, tmp_path: Path
) -> None:
    """A remote model may run many generations at once; the turns' locks then hit the replica's cap
    (pool + overflow - 10 = 2 here) and the rest get 429 `turns_overloaded`, never 503."""
    url = pg.new()
    model = echo.entry("wide", "slow-10", concurrency=16, queue_depth=16)
    server = start_server(tmp_path, [model], url, SLIPWAY_DB_POOL_SIZE="2", SLIPWAY_DB_MAX_OVERFLOW="10")
    try:

        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
                ids = [(await client.post("/api/sessions", json={})).json()["id"] for _ in range(12)]
                return await asyncio.gather(
                    *(client.post(f"/api/sessions/{i}/messages", json={"content": "go"}) for i in ids)
                )

        answers = asyncio.run(run())
        counts = Counter(r.status_code for r in answers)
        assert set(counts) <= {200, 429} and counts[200] >= 2 and counts[429] >= 1, counts
        codes = {r.json()["error"]["code"] for r in answers if r.status_code == 429}
        assert codes == {"turns_overloaded"}, codes
    finally:
        server.stop()
        server.tmp.cleanup()
