"""An upstream provider killed mid-stream: the stream ends with an error event and [DONE], and the
model's only slot is free again for the next request (Redis faults: test_limits.py)."""

from __future__ import annotations

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
    parse_event,
    server_with,
    upstream_model,
)

pytestmark = pytest.mark.slow


def test_upstream_killed_mid_stream_ends_the_stream_and_frees_the_slot(tmp_path: Path) -> None:
    upstream = Upstream().start()
    revived = Upstream(upstream.port)
    try:
        # One slot and no queue: while a stream holds the slot, any other request is refused at once.
        models = [upstream_model("remote", upstream, "words-1000-50", concurrency=1, queue_depth=0)]
        with server_with(tmp_path, models, SLIPWAY_API_KEYS=KEY) as server:
            result: dict[str, StreamResult] = {}
            got_tokens = threading.Event()

            def stream() -> None:
                started = time.perf_counter()
                with httpx.stream(
                    "POST",
                    server.url + "/v1/chat/completions",
                    json=chat_body(stream=True),
                    headers=bearer(),
                    timeout=60,
                ) as r:
                    res = StreamResult(r.status_code, dict(r.headers), started=started)
                    for line in r.iter_lines():
                        if line.startswith("data: "):
                            res.events.append(parse_event(line))
                            if len(res.text.split()) >= 3:
                                got_tokens.set()
                result["stream"] = res

            reader = threading.Thread(target=stream)
            reader.start()
            assert got_tokens.wait(30), "the stream never started"
            busy = httpx.post(
                server.url + "/v1/chat/completions", json=chat_body(model="remote"), headers=bearer(), timeout=30
            )
            assert busy.status_code == 429, "the slot is held by the stream"

            upstream.kill()  # SIGKILL: the upstream dies mid-stream, no goodbye
            reader.join(60)
            assert not reader.is_alive(), "the stream hung after its upstream died"
            killed = result["stream"]
            assert killed.status == 200 and killed.done
            errors = killed.error_events
            assert len(errors) == 1 and errors[0]["code"], errors
            assert set(errors[0]) == {"message", "type", "param", "code"}
            assert 3 <= len(killed.text.split()) < 1000

            models_now = httpx.get(server.url + "/v1/models", headers=bearer()).json()["data"]
            assert models_now[0]["slipway"]["queue"] == {"active": 0, "waiting": 0, "depth": 0}

            revived.start()  # the upstream comes back on the same address
            again = httpx.post(
                server.url + "/v1/chat/completions",
                json=chat_body(model="remote", max_tokens=3),
                headers=bearer(),
                timeout=30,
            )
            assert again.status_code == 200, again.text
            assert again.json()["choices"][0]["message"]["content"].split() == ["w0", "w1", "w2"]
            metrics = httpx.get(server.url + "/metrics", headers=bearer()).text
            assert f'slipway_provider_errors_total{{code="{errors[0]["code"]}",model="remote"}} 1.0' in metrics
    finally:
        upstream.kill()
        revived.kill()
