"""Ollama's native path against the OpenAI path, same model, same prompt, one run: Slipway in front of
the mock upstream (20 chunks, 1 ms apart), streamed requests one at a time, alternating the two
paths so drift hits both; prints median and p90 latency of each and their ratio (NDJSON framing
against SSE). Asserts nothing.

    .venv/bin/python -m bench.dialects [--requests 300] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx

from bench import gateways

PROMPT = [{"role": "user", "content": "Hello"}]


def timed(client: httpx.Client, url: str, body: dict[str, object]) -> float:
    start = time.perf_counter()
    with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        for _ in response.iter_bytes():
            pass
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with (
        gateways.workdir() as tmp,
        gateways.mock_upstream(20, 1.0, Path(tmp)) as mock,
        gateways.slipway(mock, Path(tmp)) as slipway,
    ):
        base = slipway.url.rsplit("/v1/chat/completions", 1)[0]
        paths = {
            "openai_sse": (
                base + "/v1/chat/completions",
                {"model": gateways.MODEL, "messages": PROMPT, "stream": True},
            ),
            "ollama_ndjson": (base + "/api/chat", {"model": gateways.MODEL, "messages": PROMPT, "stream": True}),
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        with httpx.Client(timeout=30) as client:
            for _ in range(20):  # warm-up
                for url, body in paths.values():
                    timed(client, url, body)
            for _ in range(args.requests):
                for name, (url, body) in paths.items():
                    times[name].append(timed(client, url, body))
    result: dict[str, float] = {}
    for name, values in times.items():
        ordered = sorted(values)
        result[f"{name}_p50_ms"] = round(statistics.median(values), 3)
        result[f"{name}_p90_ms"] = round(ordered[int(0.9 * (len(ordered) - 1))], 3)
        print(f"{name:14s} p50 {result[f'{name}_p50_ms']:7.3f} ms   p90 {result[f'{name}_p90_ms']:7.3f} ms")
    result["ratio_p50_ollama_vs_openai"] = round(result["ollama_ndjson_p50_ms"] / result["openai_sse_p50_ms"], 3)
    print(f"Ollama path / OpenAI path (p50): {result['ratio_p50_ollama_vs_openai']:.3f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
