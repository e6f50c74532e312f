"""Graceful shutdown on SIGTERM: new connections refused, a stream that fits in the grace period
finishes normally, a longer one ends with an error event and [DONE] when the grace period is over,
and the process exits cleanly. Streams come from the scripted upstream, so their lengths are known."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import httpx
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
