"""Each session belongs to the caller's identity (the API key's name). Another caller gets 404, never
403, on every route and on the WebSocket: exactly what an id that never existed gets. Keys: one static
(SLIPWAY_API_KEYS) and one created in the database by `python -m app keys create`, after
`python -m app db upgrade` made the table."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.auth.keys import generate_key
from tests.servers import ROOT, SlipwayServer
from tests.sessions.conftest import Databases, echo_models, new_session, start_server
from tests.sessions.standin import EchoModel

pytestmark = pytest.mark.slow

STATIC = generate_key()


def run_app(url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["SLIPWAY_DATABASE_URL"] = url
    done = subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def keyed(
    databases: Databases, echo: EchoModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SlipwayServer, str]]:
    url = databases.new()
    run_app(url, "db", "upgrade")
    alice = run_app(url, "keys", "create", "--name", "alice")
    server = start_server(tmp_path_factory.mktemp("keyed"), echo_models(echo), url, SLIPWAY_API_KEYS=STATIC)
    yield server, alice
    server.stop()
    server.tmp.cleanup()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_another_identity_gets_404_everywhere(keyed: tuple[SlipwayServer, str]) -> None:
    server, alice = keyed
    owner, other = auth(STATIC), auth(alice)
    sid = new_session(server.url, owner, title="private")["id"]
    assert (
        httpx.post(f"{server.url}/api/sessions/{sid}/messages", json={"content": "mine"}, headers=owner).status_code
        == 200
    )
    ghost = "0" * 32
    calls = [
        ("GET", "/api/sessions/{id}", None),
        ("DELETE", "/api/sessions/{id}", None),
        ("POST", "/api/sessions/{id}/messages", {"content": "let me in"}),
        ("GET", "/api/sessions/{id}/export", None),
    ]
    for method, path, body in calls:
        theirs = httpx.request(method, server.url + path.format(id=sid), json=body, headers=other)
        missing = httpx.request(method, server.url + path.format(id=ghost), json=body, headers=other)
        assert theirs.status_code == 404 and missing.status_code == 404, (method, path, theirs.text)
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "session_not_found"
        assert theirs.json()["error"]["message"].replace(sid, ghost) == missing.json()["error"]["message"]
    listed = httpx.get(server.url + "/api/sessions", headers=other).json()["data"]
    assert sid not in [s["id"] for s in listed]
    mine = httpx.get(f"{server.url}/api/sessions/{sid}", headers=owner)
    assert mine.status_code == 200 and mine.json()["messages"][0]["content"] == "mine"
    assert len(mine.json()["messages"]) == 2, "the other caller's DELETE and POST changed nothing"
    assert sid in [s["id"] for s in httpx.get(server.url + "/api/sessions", headers=owner).json()["data"]]


def test_each_identity_lists_only_its_own(keyed: tuple[SlipwayServer, str]) -> None:
    server, alice = keyed
    a = new_session(server.url, auth(alice), title="alice's")["id"]
    s = new_session(server.url, auth(STATIC), title="static's")["id"]
    alice_ids = [x["id"] for x in httpx.get(server.url + "/api/sessions", headers=auth(alice)).json()["data"]]
    static_ids = [x["id"] for x in httpx.get(server.url + "/api/sessions", headers=auth(STATIC)).json()["data"]]
    assert a in alice_ids and s not in alice_ids and s in static_ids and a not in static_ids


def test_keys_are_required_once_keys_exist(keyed: tuple[SlipwayServer, str]) -> None:
    server, _ = keyed
    r = httpx.post(server.url + "/api/sessions")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"


def test_websocket_of_another_identity_is_404(keyed: tuple[SlipwayServer, str]) -> None:
    server, alice = keyed
    sid = new_session(server.url, auth(STATIC))["id"]
    url = server.url.replace("http://", "ws://") + f"/api/sessions/{sid}/ws"
    # A browser cannot set headers: the key travels in a first frame, then the socket is the owner's.
    with connect(url) as ws:
        ws.send(orjson.dumps({"type": "auth", "key": STATIC}).decode())
        assert orjson.loads(ws.recv(timeout=30)) == {"type": "auth", "ok": True}
        ws.send(orjson.dumps({"type": "message", "content": "over the socket"}).decode())
        frames = []
        while not frames or frames[-1]["type"] != "done":
            frames.append(orjson.loads(ws.recv(timeout=30)))
    with connect(url, additional_headers=auth(alice)) as ws:
        error = orjson.loads(ws.recv(timeout=30))
        assert error["code"] == "session_not_found"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
