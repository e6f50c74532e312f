"""Fallbacks and retries: before the first token a failing model is retried with backoff, then
passed to its fallbacks; after the first token the stream ends with an error event, no fallback."""

from __future__ import annotations

import re

import pytest

from tests.providers.conftest import StandIns, assert_error, chat, stream_events, streamed_text
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model


def test_primary_refusing_connections_falls_back_and_names_the_fallback(remote: SlipwayServer) -> None:
    r = chat(remote, "primary-down")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "smollm2" and r.headers["x-slipway-model"] == "smollm2"
    assert r.json()["choices"][0]["message"]["content"]


def test_streamed_fallback_is_named_in_header_and_chunks(remote: SlipwayServer) -> None:
    r, events = stream_events(remote, "primary-down")
    assert r.status_code == 200 and r.headers["x-slipway-model"] == "smollm2"
    assert streamed_text(events)
    assert {e["model"] for e in events if isinstance(e, dict)} == {"smollm2"}


def test_failure_after_first_token_ends_stream_with_error_and_no_fallback(
    remote: SlipwayServer, standins: StandIns
) -> None:
    before = len(standins.ollama.requests_for("cut-a"))
    r, events = stream_events(remote, "primary-cut")
    assert r.status_code == 200 and r.headers["x-slipway-model"] == "primary-cut"
    assert events[-1] == "[DONE]"
    error = events[-2]["error"]
    assert error["code"] == "upstream_unreachable" and "127.0.0.1:" in error["message"]
    chunks = [e for e in events[:-2] if isinstance(e, dict)]
    assert streamed_text(chunks), "the first token reached the client before the failure"
    assert {c["model"] for c in chunks} == {"primary-cut"}, "no fallback once text was sent"
    assert len(standins.ollama.requests_for("cut-a")) == before + 1, "no retry once text was sent"


def test_non_streamed_failure_after_first_token_is_an_error_without_fallback(remote: SlipwayServer) -> None:
    assert_error(chat(remote, "primary-cut"), 503, "upstream_unreachable")


def test_retries_back_off_then_succeed(remote: SlipwayServer, standins: StandIns) -> None:
    r = chat(remote, "flaky")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "flaky"
    attempts = standins.ollama.requests_for("flaky-2-a")
    assert len(attempts) == 3, "two failures, two retries, one success"
    retries = re.findall(r"model flaky failed .*?; retry (\d) in (\d+\.\d+)s", remote.log_text())
    assert [n for n, _ in retries] == ["1", "2"]
    assert float(retries[0][1]) <= 0.25 and float(retries[1][1]) <= 0.5, "jittered waits within 0.25 s * 2**n"


def test_retries_exhausted_give_the_last_error(remote: SlipwayServer, standins: StandIns) -> None:
    err = assert_error(chat(remote, "exhausted"), 503, "upstream_error")
    assert "HTTP 503" in err["message"]
    assert len(standins.openai.requests_for("fail-503-b")) == 3


def test_timeouts_before_the_first_token_are_retried(remote: SlipwayServer, standins: StandIns) -> None:
    assert_error(chat(remote, "slow-retried"), 504, "timeout")
    assert len(standins.gemini.requests_for("slow-b")) == 2


def test_fallbacks_go_on_past_models_that_cannot_serve(remote: SlipwayServer, standins: StandIns) -> None:
    """Not configured, then not pulled: neither is retryable, both are the model's fault: next one."""
    r = chat(remote, "unconfigured-first")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "smollm2"
    assert len(standins.ollama.requests_for("missing-b")) == 1
