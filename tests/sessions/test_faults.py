"""Database faults: 503 with Retry-After, nothing written half-way, recovery without a restart.

Postgres is cut with a TCP proxy on loopback that the test controls (`tests.faults.TcpProxy`): the
machine's Postgres is never stopped. SQLite's fault is the one it really has: another process holding
the write lock longer than `db_timeout_s` (a backup, a long migration).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from tests.faults import TcpProxy
from tests.servers import SlipwayServer
from tests.sessions.conftest import Databases, echo_models, messages, new_session, say, start_server, wait_for
from tests.sessions.standin import EchoModel

pytestmark = pytest.mark.slow

FAST_TIMEOUT = {"SLIPWAY_DB_TIMEOUT_S": "1"}


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    error = r.json()["error"]
    assert error["code"] == "database_unavailable" and set(error) == {"message", "type", "param", "code"}


def ws_turn(ws: Any, content: str) -> dict[str, Any]:
    ws.send(orjson.dumps({"type": "message", "content": content}).decode())
    while True:
        frame = orjson.loads(ws.recv(timeout=60))
        if frame["type"] != "delta":
            return frame


def ready(server: SlipwayServer) -> bool:
    return httpx.get(server.url + "/readyz", timeout=10).status_code == 200


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Databases]:
    dbs = Databases("postgres", tmp_path)
    yield dbs
    dbs.drop_all()


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_postgres_cut_gives_503_and_recovers(pg: Databases, echo: EchoModel, tmp_path: Path, mode: str) -> None:
    with TcpProxy(5432) as proxy:
        server = start_server(tmp_path, echo_models(echo), pg.new(port=proxy.port), **FAST_TIMEOUT)
        try:
            sid = new_session(server.url)["id"]
            assert say(server.url, sid, "before the cut").status_code == 200
            ws = connect(server.url.replace("http://", "ws://") + f"/api/sessions/{sid}/ws")
            assert ws_turn(ws, "socket before the cut")["type"] == "done"
            assert proxy.connections > 0, "the service reaches Postgres through the proxy"

            proxy.cut(mode)
            assert_unavailable(httpx.post(server.url + "/api/sessions", timeout=30))
            assert_unavailable(httpx.get(server.url + "/api/sessions", timeout=30))
            assert_unavailable(httpx.get(f"{server.url}/api/sessions/{sid}", timeout=30))
            assert_unavailable(say(server.url, sid, "during the cut"))
            frame = ws_turn(ws, "socket during the cut")
            assert frame["type"] == "error" and frame["code"] == "database_unavailable" and frame["retry_after"] > 0
            late = connect(server.url.replace("http://", "ws://") + f"/api/sessions/{sid}/ws")
            assert orjson.loads(late.recv(timeout=30))["code"] == "database_unavailable", (
                "a socket opened now stays open"
            )
            readyz = httpx.get(server.url + "/readyz", timeout=30)
            assert readyz.status_code == 503 and readyz.json()["checks"]["database"]["ok"] is False

            proxy.restore()
            wait_for(lambda: ready(server))
            assert ws_turn(late, "late socket")["type"] == "done"
            late.close()
            assert say(server.url, sid, "after the cut").status_code == 200
            assert ws_turn(ws, "socket after the cut")["type"] == "done", "the same socket works again"
            ws.close()
            contents = [m["content"] for m in messages(server.url, sid) if m["role"] == "user"]
            assert contents == [
                "before the cut",
                "socket before the cut",
                "late socket",
                "after the cut",
                "socket after the cut",
            ], "nothing half-written"
            assert "database unavailable" in server.log_text() and "database reachable again" in server.log_text()
        finally:
            server.stop()
            server.tmp.cleanup()


@pytest.mark.postgres
def test_postgres_cut_during_a_turn_keeps_the_committed_user_message(
    pg: Databases, echo: EchoModel, tmp_path: Path
) -> None:
    with TcpProxy(5432) as proxy:
        server = start_server(tmp_path, echo_models(echo), pg.new(port=proxy.port), **FAST_TIMEOUT)
        try:
            sid = new_session(server.url, model="slow")["id"]
            frames = []
            with httpx.stream(
                "POST", f"{server.url}/api/sessions/{sid}/messages?stream=true", json={"content": "mid"}, timeout=60
            ) as r:
                for line in r.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    payload = line.removeprefix("data: ")
                    frames.append(payload if payload == "[DONE]" else orjson.loads(payload))
                    if len(frames) == 2:
                        proxy.cut()  # the user message is committed; the answer is still being generated
            errors = [f for f in frames if isinstance(f, dict) and f["type"] == "error"]
            assert len(errors) == 1 and errors[0]["code"] == "database_unavailable" and frames[-1] == "[DONE]"
            proxy.restore()
            wait_for(lambda: ready(server))
            stored = messages(server.url, sid)
            assert [(m["role"], m["content"]) for m in stored] == [("user", "mid")], (
                "the user message committed before generation stays; the answer's transaction left no trace"
            )
            assert say(server.url, sid, "and again").status_code == 200
        finally:
            server.stop()
            server.tmp.cleanup()


@pytest.mark.postgres
def test_postgres_down_at_start_up_migrates_once_it_returns(pg: Databases, echo: EchoModel, tmp_path: Path) -> None:
    with TcpProxy(5432) as proxy:
        url = pg.new(port=proxy.port)
        proxy.cut()
        server = start_server(tmp_path, echo_models(echo), url, wait_ready=False, **FAST_TIMEOUT)
        try:
            wait_for(lambda: _healthy(server))
            readyz = httpx.get(server.url + "/readyz", timeout=30)
            assert readyz.status_code == 503 and readyz.json()["checks"]["database"]["ok"] is False
            proxy.restore()
            wait_for(lambda: ready(server), timeout=60)
            assert httpx.get(server.url + "/readyz").json()["checks"]["database"] == {"ok": True}
            # Auth failed closed while the database (which may hold keys) was away; it opens once the
            # key ring has read the empty key table (within its refresh interval).
            wait_for(lambda: httpx.post(server.url + "/api/sessions").status_code == 201, timeout=30)
            assert "migrations will be retried" in server.log_text()
        finally:
            server.stop()
            server.tmp.cleanup()


def _healthy(server: SlipwayServer) -> bool:
    try:
        return httpx.get(server.url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_sqlite_locked_past_the_timeout_gives_503_and_recovers(echo: EchoModel, tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    server = start_server(tmp_path, echo_models(echo), f"sqlite+aiosqlite:///{path}", **FAST_TIMEOUT)
    try:
        sid = new_session(server.url)["id"]
        assert say(server.url, sid, "before the lock").status_code == 200
        ws = connect(server.url.replace("http://", "ws://") + f"/api/sessions/{sid}/ws")
        assert ws_turn(ws, "socket before the lock")["type"] == "done"

        holder = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        holder.execute("BEGIN EXCLUSIVE")  # another process writing for longer than db_timeout_s
        try:
            assert_unavailable(httpx.post(server.url + "/api/sessions", timeout=30))
            assert_unavailable(say(server.url, sid, "while locked"))
            frame = ws_turn(ws, "socket while locked")
            assert frame["type"] == "error" and frame["code"] == "database_unavailable"
            assert httpx.get(f"{server.url}/api/sessions/{sid}").status_code == 200, "reads go on (WAL)"
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        assert say(server.url, sid, "after the lock").status_code == 200
        assert ws_turn(ws, "socket after the lock")["type"] == "done"
        ws.close()
        contents = [m["content"] for m in messages(server.url, sid) if m["role"] == "user"]
        assert contents == ["before the lock", "socket before the lock", "after the lock", "socket after the lock"]
        assert [m["role"] for m in messages(server.url, sid)] == ["user", "assistant"] * 4
    finally:
        server.stop()
        server.tmp.cleanup()
