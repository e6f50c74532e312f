"""Graceful shutdown on SIGTERM: new connections refused, a stream that fits in the grace period
finishes normally, a longer one ends with an error event and [DONE] when the grace period is over,
and the process exits cleanly. Streams come from the scripted upstream, so their lengths are known."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.hardening.conftest import (
    KEY,
    StreamResult,
    Upstream,
    bearer,
    chat_body,
    server_with,
    stream_chat,
    upstream_model,
)
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def active_models(server: SlipwayServer) -> list[str]:
    models = httpx.get(server.url + "/v1/models", headers=bearer()).json()["data"]
    return [m["id"] for m in models if m["slipway"]["queue"]["active"]]


def test_sigterm_drains_streams_then_stops_the_rest(upstream: Upstream, tmp_path: Path) -> None:
    models = [
        upstream_model("short", upstream, "words-30-50"),  # about 1.5 s
        upstream_model("long", upstream, "words-2000-50"),  # about 100 s: cannot finish in the grace period
    ]
    with server_with(tmp_path, models, SLIPWAY_API_KEYS=KEY, SLIPWAY_SHUTDOWN_GRACE_S="4") as server:
        results: dict[str, StreamResult] = {}

        def run(name: str) -> None:
            results[name] = stream_chat(server.url, chat_body(model=name), timeout=60)

        threads = [threading.Thread(target=run, args=(name,)) for name in ("long", "short")]
        for t in threads:
            t.start()
        # Wait until both streams hold their model's slot.
        deadline = time.monotonic() + 30
        while sorted(active_models(server)) != ["long", "short"]:
            assert time.monotonic() < deadline, "the streams never started"
            time.sleep(0.05)
        time.sleep(0.3)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not connection_refused(server.port):
            assert time.monotonic() < deadline, "the server still accepts connections after SIGTERM"
            time.sleep(0.05)
        for t in threads:
            t.join(60)
            assert not t.is_alive(), "a stream hung through shutdown"
        code = server.proc.wait(30)
        server.stop()  # closes the log file
        log = server.log_text()

    short, long = results["short"], results["long"]
    assert short.status == 200 and short.done and not short.error_events, "a stream within the grace period ends well"
    assert short.text.split() == [f"w{i}" for i in range(30)]
    assert long.status == 200 and long.done, "the cut stream still ends with [DONE]"
    assert [e["code"] for e in long.error_events] == ["shutting_down"]
    assert 0 < len(long.text.split()) < 2000
    # uvicorn re-raises the SIGTERM it caught once it has shut down: -15 is its clean exit.
    assert code in (0, -signal.SIGTERM)
    assert "shutdown: draining" in log and "grace period over; stopping 1 generation(s)" in log
    assert "Application shutdown complete" in log
    assert "timeout graceful shutdown exceeded" not in log, "streams ended before uvicorn had to cancel them"


def session_stream(url: str, sid: str, content: str) -> list[Any]:
    """A streamed session turn, read to the end: its JSON frames, and "[DONE]"."""
    frames: list[Any] = []
    with httpx.stream(
        "POST", f"{url}/api/sessions/{sid}/messages?stream=true", json={"content": content}, headers=bearer(), timeout=60
    ) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: "):
                payload = line.removeprefix("data: ")
                frames.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return frames


def test_sigterm_during_conversation_turns_leaves_nothing_half_written(upstream: Upstream, tmp_path: Path) -> None:
    """A turn that ends within the grace period is stored complete; a longer one is stored as the partial
    answer it had, marked incomplete, with its user message: read back by a new server on the same file."""
    models = [upstream_model("short", upstream, "words-30-50"), upstream_model("long", upstream, "words-2000-50")]
    db = f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}"
    env = {"SLIPWAY_API_KEYS": KEY, "SLIPWAY_SHUTDOWN_GRACE_S": "4", "SLIPWAY_DATABASE_URL": db}
    (tmp_path / "a").mkdir()
    with server_with(tmp_path / "a", models, **env) as server:
        sids = {
            name: httpx.post(server.url + "/api/sessions", json={"model": name}, headers=bearer()).json()["id"]
            for name in ("short", "long")
        }
        frames: dict[str, list[Any]] = {}

        def run(name: str) -> None:
            frames[name] = session_stream(server.url, sids[name], f"a {name} turn")

        threads = [threading.Thread(target=run, args=(name,)) for name in ("long", "short")]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while sorted(active_models(server)) != ["long", "short"]:
            assert time.monotonic() < deadline, "the turns never started"
            time.sleep(0.05)
        time.sleep(0.3)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
            assert not t.is_alive(), "a turn hung through shutdown"
        code = server.proc.wait(30)
    assert code in (0, -signal.SIGTERM)
    assert frames["short"][-2]["type"] == "done" and frames["short"][-2]["status"] == "complete"
    assert frames["long"][-1] == "[DONE]", "the cut turn's stream still ends properly"

    (tmp_path / "b").mkdir()
    with server_with(tmp_path / "b", models, **env) as again:
        stored = {
            name: httpx.get(f"{again.url}/api/sessions/{sid}", headers=bearer()).json()["messages"]
            for name, sid in sids.items()
        }
    short, long = stored["short"], stored["long"]
    assert [(m["role"], m["status"]) for m in short] == [("user", "complete"), ("assistant", "complete")]
    assert short[1]["content"].split() == [f"w{i}" for i in range(30)]
    assert [(m["role"], m["status"]) for m in long] == [("user", "complete"), ("assistant", "incomplete")]
    words = long[1]["content"].split()
    assert 0 < len(words) < 2000 and words == [f"w{i}" for i in range(len(words))], "the partial, as generated"
    assert long[1]["error"] in {"shutting_down", "client_disconnected"}


def test_sigterm_with_a_delay_leaves_the_rotation_before_it_stops_listening(upstream: Upstream, tmp_path: Path) -> None:
    """SLIPWAY_SHUTDOWN_DELAY_S: /readyz says 503 `draining` at once while the service keeps taking new
    connections and answering them, so a balancer that health-checks it stops routing first; a second
    signal skips what is left of the delay."""
    models = [upstream_model("fast", upstream, "words-3-0")]
    server = server_with(tmp_path, models, SLIPWAY_API_KEYS=KEY, SLIPWAY_SHUTDOWN_DELAY_S="60")
    with server:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while (ready := httpx.get(server.url + "/readyz", timeout=5)).status_code == 200:
            assert time.monotonic() < deadline, "readiness never turned"
            time.sleep(0.05)
        assert ready.status_code == 503 and ready.json()["checks"]["shutdown"] == "draining"
        with httpx.Client(timeout=30) as fresh:  # a new connection, during the delay
            answer = fresh.post(server.url + "/v1/chat/completions", json=chat_body(), headers=bearer())
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
        assert not connection_refused(server.port)
        assert "shutdown: not ready; serving 60.0 s more" in server.log_text()

        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(30)  # far less than the 60 s delay
        assert server.proc.returncode == -signal.SIGTERM  # uvicorn's clean exit re-raises the signal
        assert "delay over" not in server.log_text()
