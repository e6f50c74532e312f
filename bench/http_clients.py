"""The upstream HTTP client alone: what one streamed completion costs through each candidate client,
against the bench's mock upstream (20 SSE chunks, no pacing), at 1 and 16 concurrent streams.

Issue #18 asks which client the wire providers should use: httpx (today) against the clients already
in the lock (httpx2, the line the openai and google-genai SDKs moved to) and aiohttp when installed.
Each client reads the same stream line by line with a keep-alive pool, as `openai_wire` does; the
figure is streams per second in one process (the mock runs in its own), with the ratio to httpx in
the same run. Rounds are interleaved so machine noise hits every client alike.

    python -m bench.http_clients [--streams 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from tests.servers import free_port

BODY = orjson.dumps(
    {
        "model": "mock",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)
HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}

Reader = Callable[[], Awaitable[int]]


def httpx_reader(module: Any, url: str) -> tuple[Reader, Callable[[], Awaitable[None]]]:
    client = module.AsyncClient(timeout=30, limits=module.Limits(max_connections=None, max_keepalive_connections=64))

    async def read() -> int:
        lines = 0
        async with client.stream("POST", url, content=BODY, headers=HEADERS) as r:
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    lines += 1
        return lines

    return read, client.aclose


def aiohttp_reader(url: str) -> tuple[Reader, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))

    async def read() -> int:
        lines = 0
        async with session.post(url, data=BODY, headers=HEADERS) as r:
            async for raw in r.content:
                if raw.startswith(b"data:"):
                    lines += 1
        return lines

    return read, session.close


async def rate(read: Reader, streams: int, concurrency: int) -> float:
    queue = list(range(streams))

    async def worker() -> None:
        while queue:
            queue.pop()
            assert await read() >= 20

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return streams / (time.perf_counter() - started)


async def measure(url: str, streams: int, rounds: int) -> dict[str, dict[int, float]]:
    clients: dict[str, tuple[Reader, Callable[[], Awaitable[None]]]] = {"httpx": httpx_reader(httpx, url)}
    if importlib.util.find_spec("httpx2"):
        import httpx2

        clients["httpx2"] = httpx_reader(httpx2, url)
    if importlib.util.find_spec("aiohttp"):
        clients["aiohttp"] = aiohttp_reader(url)
    results: dict[str, dict[int, list[float]]] = {name: {1: [], 16: []} for name in clients}
    try:
        for read, _ in clients.values():  # warm-up: connections open, code paths hot
            await rate(read, 50, 16)
        for _ in range(rounds):
            for concurrency in (1, 16):
                for name, (read, _) in clients.items():
                    results[name][concurrency].append(await rate(read, streams, concurrency))
    finally:
        for _, close in clients.values():
            await close()
    return {name: {c: statistics.median(v) for c, v in by.items()} for name, by in results.items()}


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the mock upstream did not start on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, "-m", "bench.mock_upstream", "--port", str(port), "--pace-ms", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        import uvloop

        found = uvloop.run(measure(f"http://127.0.0.1:{port}/v1/chat/completions", args.streams, args.rounds))
    finally:
        mock.terminate()
        mock.wait(10)
    base = found["httpx"]
    print("client    streams/s c=1   x httpx   streams/s c=16   x httpx")
    for name, by in found.items():
        print(f"{name:8}  {by[1]:13.0f}   {by[1] / base[1]:7.2f}   {by[16]:14.0f}   {by[16] / base[16]:7.2f}")


if __name__ == "__main__":
    main()
