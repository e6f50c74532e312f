"""`python -m app keys` against a real database file, and a running service that honours what it
writes: database keys work, a revoked key stops working on a running server, a key created while it
runs works at once, a key's own limits apply and its name (never the key) identifies the caller."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.hardening.conftest import (
    Upstream,
    access_log,
    bearer,
    chat_body,
    keys,
    make_tables,
    server_with,
    upstream_model,
)
from tests.servers import SlipwayServer, write_models_file

pytestmark = pytest.mark.slow


def test_cli_prints_a_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    assert not db.exists()
    assert keys(db, "list").returncode == 0, "a fresh database gets its schema from the migrations"
    with sqlite3.connect(db) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert version is not None and version[0] >= "0002", version
    created = keys(db, "create", "--name", "alice", "--rpm", "5", "--tpm", "1000")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sk-slw-") and len(key) == 50 and "shown only this once" in created.stderr
    assert keys(db, "create", "--name", "alice").returncode == 1, "names are unique among active keys"

    listed = orjson.loads(keys(db, "list", "--json").stdout)
    assert [(k["name"], k["rpm"], k["tpm"], k["revoked_at"]) for k in listed] == [("alice", 5, 1000, None)]
    assert key.startswith(listed[0]["prefix"]) and key not in keys(db, "list").stdout
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert key not in dump and key[7:] not in dump, "only the hash is stored"

    assert keys(db, "revoke", "alice").returncode == 0
    assert keys(db, "revoke", "alice").returncode == 1
    assert keys(db, "create", "--name", "alice").returncode == 0, "a revoked key's name can be reused (rotation)"
    listed = orjson.loads(keys(db, "list", "--json").stdout)
    assert [k["revoked_at"] is None for k in listed] == [False, True]


def test_cli_says_when_the_database_is_unreachable(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.servers import ROOT, free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["SLIPWAY_DATABASE_URL"] = f"postgresql+asyncpg://slipway:hunter2pw@127.0.0.1:{free_port()}/test"
    env["SLIPWAY_DB_TIMEOUT_S"] = "2"
    r = subprocess.run(
        [sys.executable, "-m", "app", "keys", "list"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert r.returncode == 1 and "cannot reach the database" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "hunter2pw" not in r.stdout + r.stderr


def test_running_service_honours_the_database(upstream: Upstream, tmp_path: Path) -> None:
    db = tmp_path / "service.db"
    make_tables(db)
    alice = keys(db, "create", "--name", "alice", "--rpm", "2").stdout.strip()
    bob = keys(db, "create", "--name", "bob").stdout.strip()
    models = [upstream_model("fast", upstream, "words-2-0")]
    (tmp_path / "srv").mkdir()
    with server_with(tmp_path / "srv", models, SLIPWAY_DATABASE_URL=f"sqlite+aiosqlite:///{db}") as server:
        chat = server.url + "/v1/chat/completions"
        assert httpx.get(server.url + "/v1/models").status_code == 401, "keys in the database turn auth on"
        first = httpx.post(chat, json=chat_body(), headers=bearer(alice))
        assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "2", "alice's own rpm"
        assert httpx.post(chat, json=chat_body(), headers=bearer(alice)).status_code == 200
        assert httpx.post(chat, json=chat_body(), headers=bearer(alice)).status_code == 429
        assert httpx.post(chat, json=chat_body(), headers=bearer(bob)).status_code == 200, "bob has his own budget"

        carol = keys(db, "create", "--name", "carol").stdout.strip()
        time.sleep(1.1)  # the ring re-reads on an unknown key at most once a second
        assert httpx.get(server.url + "/v1/models", headers=bearer(carol)).status_code == 200, "new keys work at once"

        assert keys(db, "revoke", "bob").returncode == 0
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/v1/models", headers=bearer(bob)).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key kept working"
            time.sleep(0.5)
        assert httpx.get(server.url + "/v1/models", headers=bearer(carol)).status_code == 200
        names = {line["key_name"] for line in access_log(server) if line.get("status") == 200}
        assert {"alice", "bob", "carol"} <= names
        assert not any(k in server.log_text() for k in (alice, bob, carol))


def test_a_database_key_allows_a_public_bind(upstream: Upstream, tmp_path: Path) -> None:
    """`check_bind` refuses 0.0.0.0 without keys (tests/unit/test_models_file.py); a database key is a key."""
    db = tmp_path / "public.db"
    make_tables(db)
    key = keys(db, "create", "--name", "ops").stdout.strip()
    config = write_models_file(tmp_path, {"models": [upstream_model("fast", upstream, "words-1-0")]})
    env = {"SLIPWAY_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    with SlipwayServer(config=config, env=env, args=["--host", "0.0.0.0"]) as server:
        assert httpx.get(server.url + "/v1/models").status_code == 401
        assert httpx.get(server.url + "/v1/models", headers=bearer(key)).status_code == 200


def test_anonymous_is_reserved_and_the_first_key_says_auth_is_now_on(tmp_path: Path) -> None:
    db = tmp_path / "first.db"
    make_tables(db)
    for reserved in ("Anonymous", "static-0123abcd"):  # identities no database key may take
        refused = keys(db, "create", "--name", reserved)
        assert refused.returncode == 2 and "reserved" in refused.stderr, refused.stderr
    first = keys(db, "create", "--name", "ana")
    assert first.returncode == 0 and "first key: auth is now on" in " ".join(first.stderr.split())
    second = keys(db, "create", "--name", "ben")
    assert second.returncode == 0 and "first key" not in second.stderr


def test_conversations_belong_to_key_ids_and_rotation_hands_them_over(upstream: Upstream, tmp_path: Path) -> None:
    """A revoked key's name given to a new key does not bring its conversations along (the name
    used to be the owner); `keys rotate` hands them over on purpose."""
    db = tmp_path / "ids.db"
    make_tables(db)
    first = keys(db, "create", "--name", "ana").stdout.strip()
    config = write_models_file(tmp_path, {"models": [upstream_model("fast", upstream, "words-1-0")]})
    with SlipwayServer(config=config, env={"SLIPWAY_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}) as server:
        sid = httpx.post(server.url + "/api/sessions", json={}, headers=bearer(first)).json()["id"]
        rotated = keys(db, "rotate", "ana")
        assert rotated.returncode == 0 and "1 conversations moved" in rotated.stderr, rotated.stderr
        second = rotated.stdout.strip()
        assert httpx.get(f"{server.url}/api/sessions/{sid}", headers=bearer(second)).status_code == 200
        assert keys(db, "revoke", "ana").returncode == 0
        third = keys(db, "create", "--name", "ana").stdout.strip()  # the same name, a new key
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/v1/models", headers=bearer(third)).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert httpx.get(f"{server.url}/api/sessions/{sid}", headers=bearer(third)).status_code == 404
        assert httpx.get(server.url + "/api/sessions", headers=bearer(third)).json()["data"] == []
        line = access_log(server)[-1]
        assert line["key_name"] == "ana"  # logs still name the key by its name
