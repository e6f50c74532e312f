"""Every route under /v1 and /api, /metrics and the WebSocket, with no key, a wrong key, a revoked key
and a valid key (static and from the database); public routes stay open. Routes come from the running server's OpenAPI schema, so
a route added later is checked without anyone listing it here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth.keys import generate_key
from tests.hardening.conftest import KEY, Upstream, bearer, keys, make_tables, server_with, upstream_model
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

WRONG = generate_key()
PATH_VALUES = {"model_id": "fast", "name": "chat"}


@dataclass
class Keys:
    database: str
    revoked: str


@pytest.fixture(scope="module")
def db_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    db = Path(tmp_path_factory.mktemp("authdb")) / "keys.db"
    make_tables(db)
    valid = keys(db, "create", "--name", "valid").stdout.strip()
    revoked = keys(db, "create", "--name", "revoked").stdout.strip()
    assert keys(db, "revoke", "revoked").returncode == 0
    return db, Keys(valid, revoked)


@pytest.fixture(scope="module")
def server(
    upstream: Upstream, db_keys: tuple[Path, Keys], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SlipwayServer]:
    tmp = Path(tmp_path_factory.mktemp("auth"))
    env = {"SLIPWAY_API_KEYS": KEY, "SLIPWAY_DATABASE_URL": f"sqlite+aiosqlite:///{db_keys[0]}"}
    with server_with(tmp, [upstream_model("fast", upstream, "words-3-0")], **env) as s:
        yield s


def protected_operations(server: SlipwayServer) -> list[tuple[str, str]]:
    schema = httpx.get(server.url + "/openapi.json").json()
    ops = []
    for path, operations in schema["paths"].items():
        if path.startswith(("/v1/", "/api/")) or path == "/metrics":
            for method in operations:
                if method in {"get", "post", "put", "patch", "delete"}:
                    ops.append((method.upper(), re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m[1], "x"), path)))
    return ops


def call(server: SlipwayServer, method: str, path: str, key: str | None) -> httpx.Response:
    body: dict[str, Any] | None = None
    if method != "GET":
        body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "input": {"question": "hi"}}
    return httpx.request(method, server.url + path, json=body, headers=bearer(key), timeout=60)


def test_every_protected_route_needs_a_valid_key(server: SlipwayServer, db_keys: tuple[Path, Keys]) -> None:
    _, stored = db_keys
    operations = protected_operations(server)
    assert ("POST", "/v1/chat/completions") in operations and ("GET", "/metrics") in operations
    for method, path in operations:
        where = (method, path)
        missing = call(server, method, path, None)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key", where
        for refused in (WRONG, stored.revoked):
            r = call(server, method, path, refused)
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", where
        for valid in (KEY, stored.database):
            r = call(server, method, path, valid)
            assert r.status_code not in (401, 403) and r.status_code < 500, (*where, r.text)


def test_public_routes_stay_open(server: SlipwayServer) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert httpx.get(server.url + path).status_code == 200, path
