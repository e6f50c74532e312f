"""A client that leaves frees the model at once: the next request does not wait for abandoned work.

Measured on the real local model (one generation at a time). No absolute time is asserted: the
waiting request's time to first token is compared with how long the abandoned generation takes
when it runs to the end alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hardening.conftest import (
    access_line,
    bearer,
    chat_body,
    local_model,
    parse_event,
    server_with,
    stream_chat,
)
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

LONG = chat_body("Write a long story about a lighthouse keeper, with many details.", max_tokens=200)
SHORT = chat_body("Say hello.", max_tokens=4)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    tmp = tmp_path_factory.mktemp("cancel")
    models = [local_model(concurrency=1, queue_depth=4, params={"temperature": 0, "max_tokens": 200})]
    from tests.hardening.conftest import KEY

    with server_with(Path(tmp), models, SLIPWAY_API_KEYS=KEY) as s:
        stream_chat(s.url, SHORT)  # warm up
        yield s


def full_run(server: SlipwayServer) -> tuple[float, int]:
    """The long request alone, to the end: its duration and completion tokens."""
    result = stream_chat(server.url, {**LONG, "stream_options": {"include_usage": True}})
    assert result.done, result
    usage = next(e["usage"] for e in result.events if isinstance(e, dict) and e.get("usage"))
    return result.ended - result.started, usage["completion_tokens"]


def abandon_after_tokens(server: SlipwayServer, tokens: int) -> float:
    """Stream the long request, read `tokens` content tokens, then disconnect; returns when it left."""
    seen = 0
    with httpx.stream(
        "POST", server.url + "/v1/chat/completions", json={**LONG, "stream": True}, headers=bearer(), timeout=60
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = parse_event(line)
                if isinstance(event, dict) and (event.get("choices") or [{}])[0].get("delta", {}).get("content"):
                    seen += 1
                    if seen == tokens:
                        break
    return time.perf_counter()


def test_streaming_client_that_leaves_frees_the_model(server: SlipwayServer) -> None:
    alone_s, alone_tokens = full_run(server)
    assert alone_tokens >= 60, "the abandoned request must be long enough for the comparison to mean something"

    started = time.perf_counter()
    left_at = abandon_after_tokens(server, 3)
    nxt = stream_chat(server.url, SHORT)
    assert nxt.done and nxt.first_token_at is not None
    wait_for_first_token = nxt.first_token_at - left_at
    print(
        f"\nabandoned request alone: {alone_s:.2f} s for {alone_tokens} tokens; "
        f"next request's first token {wait_for_first_token:.3f} s after the client left "
        f"({wait_for_first_token / alone_s:.1%} of the abandoned run)"
    )
    # The next request got its first token well before the abandoned one would have finished.
    remaining = alone_s - (left_at - started)
    assert wait_for_first_token < remaining / 2


def first_tokens_so_far(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith("slipway_time_to_first_token_seconds_count"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_non_streaming_client_that_leaves_frees_the_model(server: SlipwayServer) -> None:
    alone_s, _ = full_run(server)
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(), timeout=60) as client:
        before = first_tokens_so_far((await client.get("/metrics")).text)
        started = time.perf_counter()
        task = asyncio.create_task(client.post("/v1/chat/completions", json=LONG))
        # Leave once the generation has produced its first token (a non-streaming client cannot see it).
        while first_tokens_so_far((await client.get("/metrics")).text) == before:
            await asyncio.sleep(0.02)
        task.cancel()
        left_at = time.perf_counter()
    nxt = await asyncio.to_thread(stream_chat, server.url, SHORT)
    assert nxt.done and nxt.first_token_at is not None
    wait_for_first_token = nxt.first_token_at - left_at
    remaining = alone_s - (left_at - started)
    print(
        f"\nnon-streaming: left {left_at - started:.2f} s in; next first token {wait_for_first_token:.3f} s later "
        f"(the abandoned run would have gone on for about {remaining:.2f} s more)"
    )
    assert wait_for_first_token < remaining / 2
    access_line(server, lambda line: line.get("path") == "/v1/chat/completions" and line["status"] == 499)


def test_a_client_leaving_mid_stream_logs_no_traceback(server: SlipwayServer) -> None:
    """`curl ... | head -5`: the stream is cut, generation stops, and the log says so in its access
    line, without "Exception in ASGI application" (sse-starlette's disconnect handler used to close the
    generator while the response was still iterating it)."""
    for _ in range(3):
        abandon_after_tokens(server, 3)
    assert stream_chat(server.url, SHORT).done  # and the service goes on
    access_line(server, lambda line: line.get("path") == "/v1/chat/completions" and line["status"] == 200)
    log = server.log_text()
    for sign in ("Traceback", "Exception in ASGI application", "already running"):
        assert sign not in log, log[log.find(sign) - 2000 : log.find(sign) + 500]
