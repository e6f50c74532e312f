"""Keys, the key ring and the auth middleware on an in-process app (HTTP and WebSocket flows)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.auth.keyring import KeyRing, Snapshot
from app.auth.keys import PREFIX, Identity, generate_key, hash_key, static_identity
from app.middleware.auth import WS_UNAUTHORIZED, AuthMiddleware, is_public

KEY = generate_key()


def test_keys_look_like_keys_and_only_hashes_are_kept() -> None:
    key = generate_key()
    assert key.startswith(PREFIX) and len(key) == len(PREFIX) + 43
    assert generate_key() != key
    assert hash_key(key) == hash_key(key) and len(hash_key(key)) == 64
    identity = static_identity(key, 10, None)
    assert key not in repr(identity) and identity.name.startswith("static-")
    assert static_identity(key, 10, None) == identity, "the same name on every replica"


async def test_keyring_finds_static_and_database_keys() -> None:
    ring = KeyRing([KEY], default_rpm=7, default_tpm=None)
    assert ring.enabled
    assert ring.lookup(KEY) is not None and ring.lookup(KEY).rpm == 7
    assert ring.lookup(KEY + "x") is None and ring.lookup("") is None

    db_key = generate_key()
    calls = 0

    async def loader() -> Snapshot:
        nonlocal calls
        calls += 1
        return Snapshot(True, {hash_key(db_key): Identity(name="alice", key_id="1", rpm=None, tpm=500)})

    ring.attach(loader)
    alice = await ring.resolve(db_key)
    assert alice is not None and alice.name == "alice" and alice.rpm == 7 and alice.tpm == 500
    assert calls == 1
    # A flood of wrong keys costs one shared refresh (per second), started after the keys arrived.
    flood = await asyncio.gather(*(ring.resolve(generate_key()) for _ in range(20)))
    assert flood == [None] * 20
    assert calls == 2


async def test_keyring_keeps_last_keys_when_database_fails() -> None:
    db_key = generate_key()
    fail = False

    async def loader() -> Snapshot:
        if fail:
            raise ConnectionError("database down")
        return Snapshot(True, {hash_key(db_key): Identity(name="bob", key_id="2")})

    ring = KeyRing([], default_rpm=None, default_tpm=None)
    assert not ring.enabled
    ring.attach(loader)
    await ring.refresh()
    assert ring.enabled and ring.lookup(db_key) is not None
    fail = True
    await ring.refresh()
    assert ring.lookup(db_key) is not None


async def test_revoking_every_database_key_keeps_auth_on() -> None:
    async def loader() -> Snapshot:
        return Snapshot(any_keys=True, active={})

    ring = KeyRing([], default_rpm=None, default_tpm=None)
    ring.attach(loader)
    await ring.refresh()
    assert ring.enabled


def test_public_paths() -> None:
    assert is_public("/healthz", False) and is_public("/static/app.js", False) and is_public("/", False)
    assert not is_public("/v1/models", False) and not is_public("/api/sessions", False)
    assert not is_public("/metrics", False) and is_public("/metrics", True)
    assert not is_public("/staticx", False)


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"identity": getattr(request.state, "identity", "anonymous")})


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"identity": getattr(websocket.state, "identity", "anonymous")})
    try:
        while True:
            await websocket.send_text("echo:" + await websocket.receive_text())
    except WebSocketDisconnect:
        pass


def make_client(keys: list[str]) -> TestClient:
    routes = [Route("/v1/whoami", whoami), Route("/healthz", whoami), WebSocketRoute("/v1/ws", echo)]
    app = AuthMiddleware(Starlette(routes=routes), keyring=KeyRing(keys, default_rpm=None, default_tpm=None))
    return TestClient(app)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client([KEY]) as c:
        yield c


def test_http_needs_a_bearer_key(client: TestClient) -> None:
    missing = client.get("/v1/whoami")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/v1/whoami", headers={"Authorization": "Bearer " + generate_key()})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    basic = client.get("/v1/whoami", headers={"Authorization": "Basic " + KEY})
    assert basic.status_code == 401
    ok = client.get("/v1/whoami", headers={"Authorization": "Bearer " + KEY})
    # state.identity is the key's id (what owns data); its name is state.key_name
    assert ok.status_code == 200 and ok.json()["identity"].startswith("static:")
    assert KEY not in ok.text + wrong.text + missing.text
    assert client.get("/healthz").status_code == 200


def test_websocket_header_auth(client: TestClient) -> None:
    with client.websocket_connect("/v1/ws", headers={"Authorization": "Bearer " + KEY}) as ws:
        assert ws.receive_json()["identity"].startswith("static:")
        ws.send_text("hi")
        assert ws.receive_text() == "echo:hi"
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/v1/ws", headers={"Authorization": "Bearer wrong"}) as ws,
    ):
        ws.receive_json()


def test_websocket_first_frame_auth(client: TestClient) -> None:
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"type": "auth", "key": KEY})
        assert ws.receive_json() == {"type": "auth", "ok": True}
        assert ws.receive_json()["identity"].startswith("static:"), "identity is set before the app runs"
        ws.send_text("hi")
        assert ws.receive_text() == "echo:hi"


def test_websocket_wrong_first_frame_is_refused(client: TestClient) -> None:
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_json({"type": "auth", "key": "sk-slw-wrong"})
        error = ws.receive_json()
        assert error["type"] == "error" and error["error"]["code"] == "invalid_api_key"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == WS_UNAUTHORIZED
    with client.websocket_connect("/v1/ws") as ws:
        ws.send_text("hello, no auth frame")
        assert ws.receive_json()["error"]["code"] == "missing_api_key"


def test_with_auth_off_an_auth_frame_is_answered_not_passed_on() -> None:
    with make_client([]) as c, c.websocket_connect("/v1/ws") as ws:
        assert ws.receive_json() == {"identity": "anonymous"}
        ws.send_json({"type": "auth", "key": "anything"})
        assert ws.receive_json() == {"type": "auth", "ok": True}
        ws.send_text("hi")
        assert ws.receive_text() == "echo:hi"
