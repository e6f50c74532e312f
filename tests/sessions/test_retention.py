"""Retention on a running service: the background task (started at start-up, stopped at shutdown)
deletes conversations past the maximum age and, per identity, beyond the maximum count."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.sessions.conftest import Databases, echo_models, new_session, say, start_server, wait_for
from tests.sessions.standin import EchoModel

pytestmark = pytest.mark.slow


def listed(url: str) -> list[str]:
    return [s["id"] for s in httpx.get(url + "/api/sessions", params={"limit": 100}).json()["data"]]


def test_only_the_most_recently_active_sessions_are_kept(databases: Databases, echo: EchoModel, tmp_path: Path) -> None:
    env = {"SLIPWAY_RETENTION_MAX_SESSIONS": "2", "SLIPWAY_RETENTION_INTERVAL_S": "0.2"}
    server = start_server(tmp_path, echo_models(echo), databases.new(), **env)
    try:
        oldest = new_session(server.url)["id"]
        middle = new_session(server.url)["id"]
        assert say(server.url, oldest, "I am still talking").status_code == 200  # the most recently active now
        newest = new_session(server.url)["id"]  # a third: one must go, the least recently active
        wait_for(lambda: len(listed(server.url)) == 2)
        assert set(listed(server.url)) == {oldest, newest}
        assert httpx.get(f"{server.url}/api/sessions/{middle}").status_code == 404
        assert server.stop() in (0, -15)  # uvicorn re-raises the SIGTERM it handled: -15 is its clean exit
        assert "Application shutdown complete" in server.log_text(), "the task stopped with the service"
    finally:
        server.stop()
        server.tmp.cleanup()


def test_sessions_idle_past_the_maximum_age_are_deleted(databases: Databases, echo: EchoModel, tmp_path: Path) -> None:
    env = {"SLIPWAY_RETENTION_MAX_AGE_DAYS": str(2 / 86400), "SLIPWAY_RETENTION_INTERVAL_S": "0.2"}
    server = start_server(tmp_path, echo_models(echo), databases.new(), **env)
    try:
        sid = new_session(server.url)["id"]
        assert say(server.url, sid, "soon forgotten").status_code == 200
        wait_for(lambda: httpx.get(f"{server.url}/api/sessions/{sid}").status_code == 404)
        assert listed(server.url) == []
    finally:
        server.stop()
        server.tmp.cleanup()
