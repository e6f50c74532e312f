"""WebSocket bounds: revoking a key reaches the sockets already open with it (header and first-frame
auth alike), and one socket cannot queue unbounded work."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.servers import ROOT, SlipwayServer
from tests.sessions.conftest import messages, new_session, start_server, wait_for
from tests.sessions.standin import EchoModel

pytestmark = pytest.mark.slow


def keys_cli(db: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["SLIPWAY_DATABASE_URL"] = db
    done = subprocess.run(
        [sys.executable, "-m", "app", "keys", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def frames_until(ws, kind: str) -> list[dict]:  # type: ignore[no-untyped-def]
    seen = []
    while True:
        frame = orjson.loads(ws.recv(timeout=60))
        seen.append(frame)
        if frame["type"] == kind:
            return seen


def test_revoking_a_key_closes_its_open_sockets_and_keeps_the_partial_answers(
    echo: EchoModel, tmp_path: Path
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/keys.db"
    server = start_server(tmp_path, [echo.entry("slow", "slow-300")], db)  # 60 words, 0.3 s each
    try:
        key = keys_cli(db, "create", "--name", "tester")
        wait_for(lambda: httpx.get(server.url + "/v1/models").status_code == 401)  # the ring saw the key
        auth = {"authorization": f"Bearer {key}"}
        ws_url = server.url.replace("http://", "ws://")
        one, two = new_session(server.url, auth)["id"], new_session(server.url, auth)["id"]
        by_header = connect(f"{ws_url}/api/sessions/{one}/ws", additional_headers=auth)
        by_frame = connect(f"{ws_url}/api/sessions/{two}/ws")
        by_frame.send(orjson.dumps({"type": "auth", "key": key}).decode())
        assert orjson.loads(by_frame.recv(timeout=30)) == {"type": "auth", "ok": True}
        for ws in (by_header, by_frame):
            ws.send(orjson.dumps({"type": "message", "content": "tell me a long story"}).decode())
            assert frames_until(ws, "delta")
        keys_cli(db, "revoke", "tester")
        for ws in (by_header, by_frame):
            error = frames_until(ws, "error")[-1]
            assert error["error"]["code"] == "invalid_api_key" and "revoked" in error["error"]["message"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        # The partial answers were stored under the revoked key's id, which nobody can use any more:
        # read them from the database file itself.
        for sid in (one, two):
            answer = wait_for(lambda sid=sid: _stored_answer(tmp_path / "keys.db", sid))
            assert answer == ("assistant", "incomplete", "key_revoked", True)
    finally:
        server.stop()
        server.tmp.cleanup()


def _stored_answer(db: Path, sid: str) -> tuple[str, str, str, bool] | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT role, status, error, content FROM chat_messages WHERE session_id = ? AND role = 'assistant'", (sid,)
        ).fetchone()
    return (row[0], row[1], row[2], bool(row[3])) if row else None


def test_one_socket_cannot_queue_unbounded_work(echo: EchoModel, tmp_path: Path) -> None:
    server = start_server(tmp_path, [echo.entry("slow", "slow-300")], f"sqlite+aiosqlite:///{tmp_path}/q.db")
    try:
        sid = new_session(server.url)["id"]
        with connect(f"{server.url.replace('http://', 'ws://')}/api/sessions/{sid}/ws") as ws:
            for i in range(40):
                ws.send(orjson.dumps({"type": "message", "content": f"message {i}"}).decode())
            refused, answering = [], False
            while len(refused) < 40 - 1 - 8 or not answering:  # one running, eight waiting, the rest dropped
                frame = orjson.loads(ws.recv(timeout=60))
                if frame["type"] == "error":
                    refused.append(frame["error"]["code"])
                answering = answering or frame["type"] == "delta"
            assert set(refused) == {"queue_full"} and len(refused) == 31
            ws.send(orjson.dumps({"type": "cancel"}).decode())
        stored = wait_for(lambda: [m for m in messages(server.url, sid) if m["role"] == "user"] or None)
        assert 1 <= len(stored) <= 9  # dropped messages were never stored
        with connect(f"{server.url.replace('http://', 'ws://')}/api/sessions/{sid}/ws") as ws:
            big = orjson.dumps({"type": "message", "content": "x" * (2 * 1024 * 1024)}).decode()
            ws.send(big)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # frame over the body limit
        assert httpx.get(server.url + "/healthz").status_code == 200
        before = rss_mib(server)
        with connect(f"{server.url.replace('http://', 'ws://')}/api/sessions/{sid}/ws", max_size=None) as ws:
            flood = orjson.dumps({"type": "message", "content": "y " * 450_000}).decode()  # ~900 KB a frame
            for _ in range(60):  # 54 MB in a second, as in the report (155 MB there)
                ws.send(flood)
        wait_for(lambda: httpx.get(server.url + "/healthz").status_code == 200)
        print(f"\nRSS {before:.1f} MiB before a 54 MB WebSocket flood, {rss_mib(server):.1f} MiB after it closed")
    finally:
        server.stop()
        server.tmp.cleanup()


def rss_mib(server: SlipwayServer) -> float:
    import psutil

    assert server.proc is not None
    return psutil.Process(server.proc.pid).memory_info().rss / 2**20
