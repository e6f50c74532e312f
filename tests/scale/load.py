"""Open-loop load for the scale proofs: requests start at a fixed rate whatever the answers do (a
closed loop would slow down exactly when the service does, and hide it), each one recorded.

    results = run_load(url, [Kind("fast", key)], rate=30, seconds=10)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

#: A request that takes longer than this is a hang (the proofs say: never past the timeout).
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Kind:
    """One sort of request in the mix: a model, a key, streaming or not."""

    model: str
    key: str
    stream: bool = False
    max_tokens: int | None = None


@dataclass
class Result:
    kind: Kind
    started: float
    ended: float = 0.0
    status: int | None = None  #: None: no HTTP response at all (connection refused, reset, timeout)
    replica: str | None = None  #: which replica answered (HAProxy's X-Replica header)
    error: str | None = None
    tokens: int = 0
    chunks: int = 0
    complete: bool = False  #: a 200 whose body is whole (a stream that reached [DONE] without an error)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.complete


def body_for(kind: Kind) -> dict[str, Any]:
    body: dict[str, Any] = {"model": kind.model, "messages": [{"role": "user", "content": "Say something short."}]}
    if kind.max_tokens:
        body["max_tokens"] = kind.max_tokens
    if kind.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


async def one(client: httpx.AsyncClient, url: str, kind: Kind, clock: Callable[[], float]) -> Result:
    result = Result(kind, started=clock())
    headers = {"Authorization": f"Bearer {kind.key}"}
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with client.stream("POST", url + "/v1/chat/completions", json=body_for(kind), headers=headers) as r:
                result.status = r.status_code
                result.replica = r.headers.get("x-replica")
                result.headers = {k.lower(): v for k, v in r.headers.items()}
                if r.status_code != 200:
                    await r.aread()
                    result.error = r.text[:4000]
                elif kind.stream:
                    await _read_stream(r, result)
                else:
                    data = json.loads(await r.aread())
                    result.tokens = (data.get("usage") or {}).get("total_tokens", 0)
                    result.complete = bool(data.get("choices"))
    except (httpx.HTTPError, TimeoutError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:300]
    result.ended = clock()
    return result


async def _read_stream(r: httpx.Response, result: Result) -> None:
    async for line in r.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            result.complete = result.error is None
            return
        event = json.loads(data)
        if "error" in event:
            result.error = json.dumps(event["error"])[:300]
            continue
        if event.get("usage"):
            result.tokens = event["usage"].get("total_tokens", 0)
        if event.get("choices"):
            result.chunks += 1


async def paced(
    url: str,
    kinds: list[Kind],
    rate: float,
    seconds: float,
    stop: threading.Event | None = None,
    origin: float | None = None,
) -> list[Result]:
    """Start `rate` requests a second (the kinds in turn) for `seconds` (or until `stop` is set);
    times are seconds since `origin` (a `time.monotonic()` reading; default: now)."""
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=256)
    origin = time.monotonic() if origin is None else origin
    start = time.monotonic() - origin

    def clock() -> float:
        return time.monotonic() - origin

    async with httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits) as client:
        tasks: list[asyncio.Task[Result]] = []
        n = 0
        while clock() - start < seconds and not (stop is not None and stop.is_set()):
            due = start + n / rate
            if due > clock():
                await asyncio.sleep(due - clock())
            tasks.append(asyncio.create_task(one(client, url, kinds[n % len(kinds)], clock)))
            n += 1
        return list(await asyncio.gather(*tasks))


def run_load(
    url: str,
    kinds: list[Kind],
    rate: float,
    seconds: float,
    stop: threading.Event | None = None,
    origin: float | None = None,
) -> list[Result]:
    return asyncio.run(paced(url, kinds, rate, seconds, stop, origin))


class Background:
    """Load in a thread of its own while the test does something else (kill, restart, cut)."""

    def __init__(self, url: str, kinds: list[Kind], rate: float, seconds: float = 3600) -> None:
        self.stop_event = threading.Event()
        self.results: list[Result] = []
        self.started = time.monotonic()
        self._thread = threading.Thread(
            target=lambda: self.results.extend(run_load(url, kinds, rate, seconds, self.stop_event, self.started)),
            daemon=True,
        )

    def clock(self) -> float:
        """The load's own clock (results' `started`/`ended` are on it)."""
        return time.monotonic() - self.started

    def __enter__(self) -> Background:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self._thread.join(TIMEOUT_S + 30)


def summary(results: list[Result]) -> dict[str, Any]:
    by_status: dict[str, int] = {}
    for r in results:
        by_status[str(r.status)] = by_status.get(str(r.status), 0) + 1
    latencies = sorted(r.ended - r.started for r in results if r.ok)
    return {
        "requests": len(results),
        "ok": sum(r.ok for r in results),
        "failed": sum(1 for r in results if not r.ok and r.status != 429),
        "by_status": by_status,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]
