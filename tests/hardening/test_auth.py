"""Every route under /v1 and /api, /metrics and the WebSocket, with no key, a wrong key, a revoked key
and a valid key (static and from the database); public routes stay open. Routes come from the running server's OpenAPI schema, so
a route added later is checked without anyone listing it here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

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


def refusal(response: httpx.Response) -> str:
    """The refusal's code: OpenAI's error object carries it; Ollama's paths answer `{"error": "..."}`
    (Ollama's shape), whose message says the same."""
    error = response.json()["error"]
    if isinstance(error, dict):
        return str(error["code"])
    if error.startswith("You didn't provide an API key"):
        return "missing_api_key"
    return "invalid_api_key" if error.startswith("Incorrect API key") else error


def test_every_protected_route_needs_a_valid_key(server: SlipwayServer, db_keys: tuple[Path, Keys]) -> None:
    """Every operation with no key, a wrong one, a revoked one and two valid ones. The calls go out
    together: a key the ring does not know waits for its one shared refresh (up to a second, by
    design), so one at a time these took 75 s of CI."""
    _, stored = db_keys
    operations = protected_operations(server)
    assert ("POST", "/v1/chat/completions") in operations and ("GET", "/metrics") in operations
    keys_tried = [None, WRONG, stored.revoked, KEY, stored.database]
    cases = [(method, path, key) for method, path in operations for key in keys_tried]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda case: call(server, *case), cases))
    for (method, path, key), r in zip(cases, answers, strict=True):
        where = (method, path, "no key" if key is None else key[:10])
        if key is None:
            assert r.status_code == 401 and refusal(r) == "missing_api_key", where
        elif key in (WRONG, stored.revoked):
            assert r.status_code == 401 and refusal(r) == "invalid_api_key", where
        else:
            assert r.status_code not in (401, 403) and r.status_code < 500, (*where, r.text)


def test_public_routes_stay_open(server: SlipwayServer) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert httpx.get(server.url + path).status_code == 200, path


def ws_turn(ws: Any) -> dict[str, Any]:
    """One message over an authenticated socket: the frames up to `done` (or an error)."""
    ws.send(orjson.dumps({"type": "message", "content": "hi"}).decode())
    while True:
        frame = orjson.loads(ws.recv(timeout=60))
        if frame["type"] != "delta":
            return frame


def refused_close_code(url: str, *, header: str | None = None, frame: str | None = None) -> int | str:
    """How a socket with this key ends: the HTTP status of a refused handshake, or the close code."""
    headers = bearer(header) if header else None
    try:
        with connect(url, additional_headers=headers) as ws:
            if frame is not None:
                ws.send(orjson.dumps({"type": "auth", "key": frame}).decode())
            else:
                ws.send(orjson.dumps({"type": "message", "content": "hi"}).decode())
            error = orjson.loads(ws.recv(timeout=30))
            assert error["type"] == "error" and error["error"]["type"] == "authentication_error", error
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
            assert closed.value.rcvd is not None
            return closed.value.rcvd.code
    except InvalidStatus as exc:
        body = orjson.loads(exc.response.body)
        assert body["error"]["code"] == "invalid_api_key", body
        return f"http {exc.response.status_code}"


def test_the_websocket_needs_a_valid_key_by_header_or_first_frame(
    server: SlipwayServer, db_keys: tuple[Path, Keys]
) -> None:
    _, stored = db_keys
    sid = httpx.post(server.url + "/api/sessions", headers=bearer(KEY)).json()["id"]
    url = server.url.replace("http://", "ws://") + f"/api/sessions/{sid}/ws"
    assert refused_close_code(url) == 4401, "no key: an error frame, then close 4401"
    for refused in (WRONG, stored.revoked):
        assert refused_close_code(url, header=refused) == "http 401", "a wrong header key: 401 at the handshake"
        assert refused_close_code(url, frame=refused) == 4401, "a wrong key in the auth frame"
    for valid in (KEY, stored.database):
        sid = httpx.post(server.url + "/api/sessions", headers=bearer(valid)).json()["id"]
        url = server.url.replace("http://", "ws://") + f"/api/sessions/{sid}/ws"
        with connect(url, additional_headers=bearer(valid)) as ws:
            assert ws_turn(ws)["type"] == "done"
        with connect(url) as ws:
            ws.send(orjson.dumps({"type": "auth", "key": valid}).decode())
            assert orjson.loads(ws.recv(timeout=30)) == {"type": "auth", "ok": True}
            assert ws_turn(ws)["type"] == "done"
