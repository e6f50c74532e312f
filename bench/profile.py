"""Where Slipway's time goes on the hot path: Slipway under pyinstrument (sampling the event loop's
thread) while the load generator sends plain and streamed requests through its `openai` provider to
the mock; the samples' own time is grouped by the layer it belongs to. Start-up (module imports) and
idle time (the loop waiting for the network) are left out: what remains is CPU spent per request."""

from __future__ import annotations

import pstats
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import gateways
from bench.overhead import load

#: Layer of a source file, by the first pattern that matches its path.
LAYERS: list[tuple[str, str]] = [
    (r"/work/main/app/|/app/(api|middleware|protocol|services|providers|core|auth|limits|observability|storage|cli)/", "slipway (app/)"),
    (r"site-packages/(fastapi|starlette|sse_starlette|uvicorn|anyio|httptools|websockets)/", "framework (FastAPI, Starlette, uvicorn)"),
    (r"site-packages/(pydantic|pydantic_core)/", "validation (pydantic)"),
    (r"site-packages/(orjson)|/json/", "serialisation (JSON)"),
    (r"site-packages/(langchain_core|langchain_openai|langsmith)/", "LangChain (core, openai, langsmith)"),
    (r"site-packages/(openai)/", "openai SDK (under LangChain)"),
    (r"site-packages/(httpx|httpcore|h11|h2)/", "HTTP client (httpx, httpcore, h11)"),
    (r"site-packages/(structlog)/|/logging/", "logging"),
    (r"site-packages/(prometheus_client|opentelemetry)", "metrics and tracing"),
    (r"/asyncio/|uvloop", "event loop"),
]


def layer(path: str) -> str:
    for pattern, name in LAYERS:
        if re.search(pattern, path):
            return name
    return "other"


def breakdown(profile: Path) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    """Own time by layer, and the functions with the most own time (layer, where, seconds)."""
    stats = pstats.Stats(str(profile))
    totals: Counter[str] = Counter()
    functions: Counter[tuple[str, str]] = Counter()
    for (path, line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name == "<module>" or (path.endswith("runners.py") and name == "run"):
            continue  # imports at start-up; the loop idling
        totals[layer(path)] += own
        short = re.sub(r".*/(site-packages|work/main)/", "", path)
        functions[(layer(path), f"{name} ({short}:{line})")] += own
    top = [(lay, where, own) for (lay, where), own in functions.most_common(20)]
    return dict(totals.most_common()), top


def run(work: Path, *, requests: int = 3000, stream_requests: int = 300, log: Callable[[str], None] = print) -> dict[str, Any]:
    profile = work / "slipway.pstats"
    with gateways.mock_upstream(20, 0.0, work) as mock:
        with gateways.slipway(mock, work, profile=profile) as target:
            load(target, 16, requests, 100, stream=False)
            load(target, 16, stream_requests, 20, stream=True)
    layers, top = breakdown(profile)
    total = sum(layers.values())
    measured = requests + stream_requests + 120  # warm-ups are profiled too
    shares = {name: {"seconds": round(s, 3), "share": round(s / total, 4), "us_per_request": round(s / measured * 1e6, 1)} for name, s in layers.items()}
    for name, item in shares.items():
        log(f"  {name:<42} {item['share'] * 100:5.1f}%  {item['us_per_request']:8.1f} us/request")
    functions = [{"layer": lay, "function": where, "us_per_request": round(own / measured * 1e6, 1)} for lay, where, own in top]
    return {
        "requests": measured,
        "cpu_s": round(total, 3),
        "us_per_request": round(total / measured * 1e6, 1),
        "layers": shares,
        "top_functions": functions,
    }
