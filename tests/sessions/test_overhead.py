"""Slipway's own time per request is visible: `X-Slipway-Overhead-Ms` on the response and
`slipway_overhead_seconds{route, model}` in /metrics, both excluding the time spent waiting for the
model. The `recall-30` stand-in sleeps 30 ms before each word, so the model's share of a request is
known from below: the overhead must leave it out (no timing is asserted, only that relation)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow


def overhead_count(server: SlipwayServer, route: str, model: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    prefix = f'slipway_overhead_seconds_count{{model="{model}",route="{route}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


@pytest.mark.parametrize("stream", [False, True])
def test_overhead_leaves_out_the_models_time(server: SlipwayServer, stream: bool) -> None:
    route = "/v1/chat/completions"
    before = overhead_count(server, route, "recall-slow")
    body = {"model": "recall-slow", "messages": [{"role": "user", "content": "one two three four"}], "stream": stream}
    started = time.perf_counter()
    with httpx.stream("POST", server.url + route, json=body, timeout=60) as r:
        text = r.read().decode()
        wall_ms = (time.perf_counter() - started) * 1000
    assert r.status_code == 200, text
    words = len("seen=2 | one two three four".split())  # the stand-in's answer, 30 ms before each word
    overhead = float(r.headers["x-slipway-overhead-ms"])
    model_ms = 30 * (1 if stream else words)  # a stream's headers go out after its first word
    assert 0 <= overhead <= wall_ms - model_ms
    assert overhead_count(server, route, "recall-slow") == before + 1


def test_every_response_carries_it(server: SlipwayServer) -> None:
    r = httpx.get(server.url + "/v1/models", timeout=10)
    assert float(r.headers["x-slipway-overhead-ms"]) >= 0
