"""Fairness between keys on one model: key A floods, key B's time to first token stays bounded.

    python -m bench.fairness [--flood 32] [--seconds 12]

A mock upstream streams 20 chunks 25 ms apart (one generation = about 0.5 s); Slipway serves it with
one generation at a time (`concurrency: 1`, the embedded model's case) and a queue of 64. First B
alone sends one streamed request a second; then A keeps `--flood` requests in flight while B does the
same again. Printed: B's time to first token alone and under the flood (median and max), one
generation's time, and the target from issue #15: B under the flood within 2x B alone plus one
generation. With a single FIFO B would wait for A's whole backlog (flood x generation time).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.gateways import mock_upstream
from tests.servers import SlipwayServer, write_models_file

KEY_A = "sk-bench-fairness-key-A-0123456789"
KEY_B = "sk-bench-fairness-key-B-0123456789"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def ttft(client: httpx.AsyncClient, key: str) -> tuple[float, float]:
    """Seconds to the first content chunk, and to the end."""
    started = time.perf_counter()
    first = None
    async with client.stream(
        "POST", "/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}
    ) as r:
        if r.status_code != 200:
            await r.aread()
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        async for line in r.aiter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - started
    return first if first is not None else float("nan"), time.perf_counter() - started


async def b_every_second(client: httpx.AsyncClient, count: int) -> list[float]:
    out = []
    for _ in range(count):
        tick = time.perf_counter()
        out.append((await ttft(client, KEY_B))[0])
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
    return out


async def flood(client: httpx.AsyncClient, width: int, stop: asyncio.Event) -> int:
    done = 0

    async def worker() -> None:
        nonlocal done
        while not stop.is_set():
            try:
                await ttft(client, KEY_A)
                done += 1
            except RuntimeError:
                await asyncio.sleep(0.05)  # 429 when A's share of the queue is full: try again

    await asyncio.gather(*(worker() for _ in range(width)))
    return done


async def measure(url: str, width: int, samples: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=width + 8, max_keepalive_connections=width + 8)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        generation = statistics.median([(await ttft(client, KEY_B))[1] for _ in range(3)])
        alone = await b_every_second(client, samples)
        stop = asyncio.Event()
        flooding = asyncio.create_task(flood(client, width, stop))
        await asyncio.sleep(2.0)  # let A's backlog build
        crowded = await b_every_second(client, samples)
        stop.set()
        a_done = await flooding
    return {
        "generation_s": generation,
        "b_alone_median_s": statistics.median(alone),
        "b_alone_max_s": max(alone),
        "b_flood_median_s": statistics.median(crowded),
        "b_flood_max_s": max(crowded),
        "a_completed": a_done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=32)
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, mock_upstream(20, 25, Path(tmp)) as upstream:
        base = upstream.url.rsplit("/chat/completions", 1)[0]
        config = write_models_file(
            Path(tmp),
            {"models": [{"name": "m", "provider": "openai", "model": "m", "base_url": base, "concurrency": 1,
                         "queue_depth": 64}]},
        )  # fmt: skip
        with SlipwayServer(config=config, env={"SLIPWAY_API_KEYS": f"{KEY_A},{KEY_B}"}) as server:
            result = asyncio.run(measure(server.url, args.flood, args.samples))
    bound = 2 * result["b_alone_median_s"] + result["generation_s"]
    fifo = args.flood * result["generation_s"]
    print(f"one generation: {result['generation_s'] * 1000:.0f} ms")
    print(f"B alone:          TTFT median {result['b_alone_median_s'] * 1000:.0f} ms, max {result['b_alone_max_s'] * 1000:.0f} ms")
    print(f"B under A's flood ({args.flood} in flight, {result['a_completed']} of A's answers meanwhile): "
          f"TTFT median {result['b_flood_median_s'] * 1000:.0f} ms, max {result['b_flood_max_s'] * 1000:.0f} ms")  # fmt: skip
    print(f"target (2x alone + one generation): {bound * 1000:.0f} ms -> "
          f"{'met' if result['b_flood_max_s'] <= bound else 'NOT met'} (max); a FIFO would make B wait about "
          f"{fifo * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
