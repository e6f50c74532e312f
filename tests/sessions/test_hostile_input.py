"""Text a database cannot hold, on SQLite and Postgres alike: 400 or 404 in the documented shape,
never a 500, and nothing already stored is lost."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import SlipwayServer
from tests.sessions.conftest import messages, new_session, say

pytestmark = pytest.mark.slow


def raw_post(url: str, raw: str) -> httpx.Response:
    return httpx.post(url, content=raw.encode(), headers={"content-type": "application/json"}, timeout=60)


def test_nul_characters_are_refused_alike_on_both_databases(server: SlipwayServer) -> None:
    session = new_session(server.url, title="kept")
    assert say(server.url, session["id"], "first").status_code == 200
    r = raw_post(server.url + "/api/sessions", '{"title": "a\\u0000b"}')
    assert r.status_code == 400 and r.json()["error"]["param"] == "title", r.text
    r = raw_post(server.url + "/api/sessions", '{"system_prompt": "x\\u0000"}')
    assert r.status_code == 400 and r.json()["error"]["param"] == "system_prompt", r.text
    r = raw_post(f"{server.url}/api/sessions/{session['id']}/messages", '{"content": "a\\u0000b"}')
    assert r.status_code == 400 and r.json()["error"]["param"] == "content", r.text
    assert httpx.get(server.url + "/api/sessions/a%00b").status_code == 404
    assert httpx.delete(server.url + "/api/sessions/a%00b").status_code == 404
    r = httpx.get(server.url + "/api/sessions", params={"after": "a\x00b"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "after", r.text
    stored = messages(server.url, session["id"])
    assert [m["content"] for m in stored if m["role"] == "user"] == ["first"]  # nothing lost or added


def test_lone_surrogates_are_refused_before_anything_is_stored(server: SlipwayServer) -> None:
    session = new_session(server.url)
    r = raw_post(server.url + "/api/sessions", '{"system_prompt": "\\ud800"}')
    assert r.status_code == 400 and r.json()["error"]["param"] == "system_prompt", r.text
    r = raw_post(f"{server.url}/api/sessions/{session['id']}/messages", '{"content": "\\udc00 hi"}')
    assert r.status_code == 400 and r.json()["error"]["param"] == "content", r.text
    assert messages(server.url, session["id"]) == []
