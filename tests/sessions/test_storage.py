"""Storage on both databases, in process: repository queries, one transaction per write, the retention
sweep, and the per-session turn lock (across two engines = two replicas, on Postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from app.core.config import Settings
from app.storage import migrate, repo, responses
from app.storage.db import Database, make_engine
from app.storage.locks import SessionBusy, SessionLocks
from app.storage.retention import RetentionPolicy, sweep
from app.storage.tables import chat_messages
from app.storage.tables import responses as responses_table
from tests.sessions.conftest import BACKENDS, Databases

#: The engine fixtures live in the session's event loop (pyproject); the tests must run in it too.
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(params=BACKENDS)
async def dbs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    databases = Databases(request.param, tmp_path)
    yield databases
    await asyncio.to_thread(databases.drop_all)


async def open_db(url: str) -> Database:
    db = Database(make_engine(Settings(database_url=url)), timeout_s=5)
    await migrate.upgrade(db.engine)
    return db


@pytest.fixture
async def db(dbs: Databases) -> AsyncIterator[Database]:
    database = await open_db(await asyncio.to_thread(dbs.new))
    yield database
    await database.dispose()


async def make_session(db: Database, identity: str, **kwargs: object) -> repo.SessionRow:
    async with db.transaction() as conn:
        return await repo.create_session(
            conn,
            session_id=repo.utcnow().strftime("%H%M%S%f") + identity[:4] + str(id(kwargs))[-6:],
            identity=identity,
            title=None,
            model=None,
            system_prompt=None,
            **kwargs,  # type: ignore[arg-type]
        )


async def test_paging_is_stable_when_sessions_share_a_timestamp(db: Database) -> None:
    now = repo.utcnow()
    mine = [await make_session(db, "alice", now=now) for _ in range(5)]
    await make_session(db, "bob", now=now)
    seen: list[str] = []
    after = None
    while True:
        async with db.transaction() as conn:
            page, more = await repo.list_sessions(conn, identity="alice", limit=2, after=after)
        seen += [s.id for s in page]
        if not more:
            break
        after = page[-1].id
    assert seen == sorted((s.id for s in mine), reverse=True), "ties broken by id, none lost or repeated"


async def test_messages_are_numbered_and_a_place_cannot_be_taken_twice(db: Database) -> None:
    session = await make_session(db, "alice")
    async with db.transaction() as conn:
        rows = [await repo.add_message(conn, session_id=session.id, role="user", content=f"m{i}") for i in range(3)]
    assert [r.seq for r in rows] == [1, 2, 3]
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await repo.add_message(conn, session_id=session.id, role="user", content="kept?")
            await conn.execute(
                insert(chat_messages).values(
                    session_id=session.id,
                    seq=1,
                    role="user",
                    content="dup",
                    status="complete",
                    created_at=repo.utcnow(),
                )
            )
    async with db.transaction() as conn:
        stored = await repo.list_messages(conn, session_id=session.id)
    assert [m.content for m in stored] == ["m0", "m1", "m2"], "the failed transaction left nothing behind"


async def test_delete_is_owner_only_and_takes_the_messages(db: Database) -> None:
    session = await make_session(db, "alice")
    async with db.transaction() as conn:
        await repo.add_message(conn, session_id=session.id, role="user", content="hello")
    async with db.transaction() as conn:
        assert not await repo.delete_session(conn, identity="mallory", session_id=session.id)
        assert await repo.get_session(conn, identity="alice", session_id=session.id) is not None
        assert await repo.delete_session(conn, identity="alice", session_id=session.id)
        assert await repo.list_messages(conn, session_id=session.id) == []


async def test_retention_deletes_by_age_and_by_count_per_identity(db: Database) -> None:
    now = repo.utcnow()
    old = await make_session(db, "alice", now=now - timedelta(days=10))
    revived = await make_session(db, "alice", now=now - timedelta(days=10))
    async with db.transaction() as conn:  # recent activity keeps an old session alive
        await repo.add_message(conn, session_id=revived.id, role="user", content="still here", now=now)
    assert await sweep(db, RetentionPolicy(max_age_days=7, max_sessions=None, interval_s=60)) == 1
    async with db.transaction() as conn:
        assert await repo.get_session(conn, identity="alice", session_id=old.id) is None
        assert await repo.get_session(conn, identity="alice", session_id=revived.id) is not None

    for hours in (5, 4, 3, 2, 1):
        await make_session(db, "bob", now=now - timedelta(hours=hours))
    assert await sweep(db, RetentionPolicy(max_age_days=None, max_sessions=2, interval_s=60)) == 3
    async with db.transaction() as conn:
        bob, _ = await repo.list_sessions(conn, identity="bob", limit=10)
        alice, _ = await repo.list_sessions(conn, identity="alice", limit=10)
    assert [s.updated_at for s in bob] == sorted((s.updated_at for s in bob), reverse=True)
    assert min(s.updated_at for s in bob) > now - timedelta(hours=2, minutes=30), "the two most recent stay"
    assert [s.id for s in alice] == [revived.id], "another identity's quota is its own"


async def test_turn_lock_is_fifo_within_a_process(db: Database) -> None:
    locks = SessionLocks(db, wait_s=30)
    order: list[str] = []

    async def turn(name: str) -> None:
        async with locks.hold("s1"):
            order.append(name + "+")
            await asyncio.sleep(0.05)
            order.append(name + "-")

    tasks = []
    for name in "abcd":
        tasks.append(asyncio.create_task(turn(name)))
        await asyncio.sleep(0)  # arrival order a, b, c, d
    await asyncio.gather(*tasks)
    assert order == ["a+", "a-", "b+", "b-", "c+", "c-", "d+", "d-"]
    assert not locks.held("s1") and locks._entries == {}, "no lock left behind"


@pytest.mark.postgres
async def test_turn_lock_holds_across_replicas_and_dies_with_its_holder(tmp_path: Path) -> None:
    dbs = Databases("postgres", tmp_path)
    url = await asyncio.to_thread(dbs.new)
    first, second = await open_db(url), await open_db(url)  # two engines: two replicas
    try:
        order: list[str] = []
        holding = asyncio.Event()

        async def replica(locks: SessionLocks, name: str, hold_s: float) -> None:
            async with locks.hold("shared"):
                order.append(name + "+")
                holding.set()
                await asyncio.sleep(hold_s)
                order.append(name + "-")

        a = asyncio.create_task(replica(SessionLocks(first, wait_s=30), "a", 0.5))
        await holding.wait()
        await replica(SessionLocks(second, wait_s=30), "b", 0)
        await a
        assert order == ["a+", "a-", "b+", "b-"], "the second replica waited for the first"

        # A replica that holds the lock longer than another will wait: 409 session_busy.
        holding.clear()
        a = asyncio.create_task(replica(SessionLocks(first, wait_s=30), "a", 2))
        await holding.wait()
        with pytest.raises(SessionBusy) as busy:
            async with SessionLocks(second, wait_s=0.3).hold("shared"):
                pass
        assert busy.value.status_code == 409 and busy.value.headers["Retry-After"]
        await a

        # A replica that dies holding the lock (its connection gone) frees the session.
        stuck = asyncio.Event()

        async def crashing() -> None:
            async with SessionLocks(first, wait_s=30).hold("shared"):
                stuck.set()
                await asyncio.sleep(3600)

        crash = asyncio.create_task(crashing())
        await stuck.wait()
        async with second.transaction() as conn:
            pids = (
                (
                    await conn.execute(
                        text(
                            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
                        )
                    )
                )
                .scalars()
                .all()
            )
            assert len(pids) == 1
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
        async with SessionLocks(second, wait_s=10).hold("shared"):
            pass
        crash.cancel()
        await asyncio.gather(crash, return_exceptions=True)
    finally:
        await first.dispose()
        await second.dispose()
        await asyncio.to_thread(dbs.drop_all)


async def test_retention_deletes_stored_responses_by_age_and_chains_end_there(db: Database) -> None:
    async def stored(response_id: str, previous: str | None) -> None:
        body = {"id": response_id, "model": "m", "status": "completed", "previous_response_id": previous, "output": []}
        async with db.transaction() as conn:
            await responses.save(conn, identity="alice", body=body, input_items=[{"id": f"in-{response_id}"}])

    await stored("resp_old", None)
    await stored("resp_new", "resp_old")
    async with db.transaction() as conn:
        await conn.execute(
            responses_table.update()
            .where(responses_table.c.id == "resp_old")
            .values(created_at=repo.utcnow() - timedelta(days=10))
        )
        chain = await responses.chain(conn, identity="alice", response_id="resp_new")
        assert [r.id for r in chain or []] == ["resp_old", "resp_new"]
        assert await responses.chain(conn, identity="mallory", response_id="resp_new") is None
    assert await sweep(db, RetentionPolicy(max_age_days=7, max_sessions=None, interval_s=60)) == 1
    async with db.transaction() as conn:
        assert await responses.get(conn, identity="alice", response_id="resp_old") is None
        chain = await responses.chain(conn, identity="alice", response_id="resp_new")
    assert [r.id for r in chain or []] == ["resp_new"], "a swept link ends the chain; the newer part is kept"
