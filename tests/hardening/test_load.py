"""Load: 100 concurrent streaming clients on the local model behind a small queue, and memory over
2,000 requests.

Backpressure: every request either streams to `[DONE]` or is refused with 429 and Retry-After at
once; none hangs. Queue waits come from the server's own access log (`queue_wait_ms`).
Memory: RSS after 2,000 requests stays within 10% of RSS after 200. Those requests run the whole
service path (auth, rate limits, metrics, access log, generation, the OpenAI-compatible provider
through LangChain, SSE) against a scripted loopback upstream, so they are cheap enough to be many,
plus one in twenty on the local model with max_tokens=1.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psutil
import pytest

from tests.hardening.conftest import (
    KEY,
    Upstream,
    access_log,
    bearer,
    chat_body,
    local_model,
    percentile,
    server_with,
    upstream_model,
)
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

CLIENTS = 100
QUEUE_DEPTH = 4


@dataclass
class Outcome:
    status: int
    seconds: float
    done: bool = False
    retry_after: str | None = None
    error_code: str | None = None


async def one_client(client: httpx.AsyncClient, index: int, delay_s: float = 0.0) -> Outcome:
    body = chat_body(f"Name a colour. ({index})", max_tokens=8, stream=True)
    await asyncio.sleep(delay_s)
    started = time.perf_counter()
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return Outcome(
                r.status_code,
                time.perf_counter() - started,
                retry_after=r.headers.get("retry-after"),
                error_code=r.json()["error"]["code"],
            )
        last = None
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                last = line.removeprefix("data: ")
        return Outcome(200, time.perf_counter() - started, done=last == "[DONE]")


@pytest.fixture(scope="module")
def small_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    tmp = Path(tmp_path_factory.mktemp("load"))
    with server_with(tmp, [local_model(concurrency=1, queue_depth=QUEUE_DEPTH)], SLIPWAY_API_KEYS=KEY) as s:
        yield s


def check_wave(outcomes: list[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    served = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 429]
    assert len(served) + len(refused) == CLIENTS, sorted({o.status for o in outcomes})
    assert all(o.done for o in served), "every served stream ends with [DONE]"
    assert all(o.retry_after and int(o.retry_after) >= 1 for o in refused), "every 429 says when to retry"
    assert {o.error_code for o in refused} <= {"model_overloaded"}
    if refused:
        # "At once": every refusal came back faster than the typical served request took.
        assert max(o.seconds for o in refused) < statistics.median(o.seconds for o in served)
    return served, refused


def report(name: str, served: list[Outcome], refused: list[Outcome], waits: list[float]) -> str:
    refused_ms = [o.seconds * 1000 for o in refused]
    return (
        f"\n{name}: {len(served)} served to [DONE], {len(refused)} refused (429)"
        f"\n  queue wait p50 {percentile(waits, 50):.0f} ms, p99 {percentile(waits, 99):.0f} ms "
        f"(served requests, from the access log)"
        f"\n  429 latency p50 {percentile(refused_ms, 50):.1f} ms, p99 {percentile(refused_ms, 99):.1f} ms; "
        f"served request duration p50 {percentile([o.seconds * 1000 for o in served], 50):.0f} ms"
    )


def queue_waits(server: SlipwayServer, since: int, expected: int) -> list[float]:
    """The served requests' queue waits; a line is written just after its response ends, so wait for all."""
    deadline = time.monotonic() + 30
    while True:
        waits = [
            line["queue_wait_ms"]
            for line in access_log(server)[since:]
            if line.get("path") == "/v1/chat/completions" and line.get("status") == 200 and "queue_wait_ms" in line
        ]
        if len(waits) >= expected or time.monotonic() > deadline:
            return waits
        time.sleep(0.05)


async def test_hundred_streaming_clients_complete_or_get_429_at_once(small_queue: SlipwayServer) -> None:
    limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=small_queue.url, headers=bearer(), timeout=300, limits=limits) as client:
        # Wave 1: all at once.
        mark = len(access_log(small_queue))
        burst = await asyncio.gather(*(one_client(client, i) for i in range(CLIENTS)))
        served, refused = check_wave(burst)
        assert len(served) >= 1 + QUEUE_DEPTH, "the running slot and the whole queue were used"
        assert refused, "more clients than the queue holds: some must be refused"
        waits = queue_waits(small_queue, mark, len(served))
        assert len(waits) == len(served)
        text = report(f"{CLIENTS} clients at once, queue depth {QUEUE_DEPTH}", served, refused, waits)
        # Wave 2: the same clients arriving 50 ms apart, so the queue fills and drains for a while.
        mark = len(access_log(small_queue))
        spread = await asyncio.gather(*(one_client(client, i, i * 0.05) for i in range(CLIENTS)))
        served2, refused2 = check_wave(spread)
        waits2 = queue_waits(small_queue, mark, len(served2))
        assert len(waits2) == len(served2)
        text += report(f"{CLIENTS} clients 50 ms apart", served2, refused2, waits2)
    print(text)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SlipwayServer, Upstream]]:
    tmp = Path(tmp_path_factory.mktemp("rss"))
    with Upstream() as up:
        models = [
            upstream_model("fast", up, "words-12-0", concurrency=8, queue_depth=64),
            local_model(concurrency=1, queue_depth=64),
        ]
        with server_with(tmp, models, SLIPWAY_API_KEYS=KEY, SLIPWAY_DEFAULT_RPM="1000000") as s:
            yield s, up


async def run_requests(client: httpx.AsyncClient, start: int, count: int, workers: int = 8) -> dict[int, int]:
    """`count` requests, `workers` at a time: chat (plain and streamed), model lists, refusals, local."""
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(start, start + count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            kind = i % 20
            if kind == 0:
                r = await client.post("/v1/chat/completions", json=chat_body("Hi", model="smollm2", max_tokens=1))
            elif kind in (1, 2):
                r = await client.get("/v1/models")
            elif kind == 3:
                r = await client.get("/v1/models", headers={"Authorization": "Bearer sk-slw-wrong"})
            elif kind == 4:
                r = await client.post("/v1/chat/completions", json=chat_body(model="no-such-model"))
            elif kind % 2:
                body = chat_body(f"Request {i}", model="fast", stream=True, stream_options={"include_usage": True})
                async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
                    assert lines[-1] == "data: [DONE]"
            else:
                r = await client.post("/v1/chat/completions", json=chat_body(f"Request {i}", model="fast"))
                assert orjson.loads(r.content)["choices"][0]["message"]["content"]
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return statuses


async def test_memory_does_not_grow_with_requests(mixed: tuple[SlipwayServer, Upstream]) -> None:
    server, _ = mixed
    assert server.proc is not None
    process = psutil.Process(server.proc.pid)
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(), timeout=120) as client:
        first = await run_requests(client, 0, 200)
        rss_200 = process.memory_info().rss
        later = await run_requests(client, 200, 1800)
        rss_2000 = process.memory_info().rss
    assert first[200] > 0 and first[401] > 0 and first[404] > 0
    assert set(later) == {200, 401, 404}, later
    growth = (rss_2000 - rss_200) / rss_200
    print(
        f"\nRSS after 200 requests {rss_200 / 2**20:.1f} MiB, after 2,000 {rss_2000 / 2**20:.1f} MiB "
        f"({growth:+.1%}); statuses {dict(sorted(later.items()))}"
    )
    assert abs(growth) <= 0.10
