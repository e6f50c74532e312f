"""Timeouts per model: past the first-token or the total timeout a request gets 504 in OpenAI's
error shape (or, once streaming, an error event), the upstream request is closed and the slot freed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.hardening.conftest import KEY, Upstream, bearer, chat_body, server_with, stream_chat, upstream_model

pytestmark = pytest.mark.slow


def test_first_token_and_total_timeouts(upstream: Upstream, tmp_path: Path) -> None:
    models = [
        # 3 s before each word; the first must come within 1 s.
        upstream_model("silent", upstream, "words-3-3000", first_token_timeout_s=1, concurrency=1, queue_depth=0),
        # 100 words 100 ms apart (10 s); everything must be done within 2 s.
        upstream_model("slow", upstream, "words-100-100", timeout_s=2, concurrency=1, queue_depth=0),
    ]
    with server_with(tmp_path, models, SLIPWAY_API_KEYS=KEY) as server:
        chat = server.url + "/v1/chat/completions"
        first = httpx.post(chat, json=chat_body(model="silent"), headers=bearer(), timeout=60)
        assert first.status_code == 504
        error = first.json()["error"]
        assert error["type"] == "timeout_error" and "first-token" in error["message"]

        total = httpx.post(chat, json=chat_body(model="slow"), headers=bearer(), timeout=60)
        assert total.status_code == 504 and "total" in total.json()["error"]["message"]

        streamed = stream_chat(server.url, chat_body(model="slow"), timeout=60)
        assert streamed.status == 200 and streamed.done
        assert [e["code"] for e in streamed.error_events] == ["timeout"]
        assert 0 < len(streamed.text.split()) < 100, "the stream stopped at the deadline"

        queues = {
            m["id"]: m["slipway"]["queue"]
            for m in httpx.get(server.url + "/v1/models", headers=bearer()).json()["data"]
        }
        assert queues["silent"]["active"] == 0 and queues["slow"]["active"] == 0, "timed-out work released its slot"
