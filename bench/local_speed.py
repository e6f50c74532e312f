"""Local model speed: through Slipway's HTTP API against llama-cpp-python called directly.

Same GGUF, prompt, settings (temperature 0, fixed max_tokens, full prompt evaluation each time) in
one run, alternating A/B so machine drift hits both. Prints tokens/s and time to first token for
each, and their ratios. A benchmark prints numbers; no test asserts them.

    .venv/bin/python -m bench.local_speed [--runs 7] [--max-tokens 128] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import httpx

from app.providers.llama_cpp import packaged_model_path
from tests.servers import SlipwayServer

PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a detailed paragraph about the history of bread."},
]


def direct_run(llm, max_tokens: int) -> tuple[float, float, int]:
    """(ttft_s, gen_tokens_per_s, tokens) calling llama-cpp-python's own streaming chat API."""
    llm.reset()  # the service evaluates the whole prompt every time; so does the baseline
    start = time.perf_counter()
    first = last = None
    pieces = 0
    for chunk in llm.create_chat_completion(messages=PROMPT, temperature=0, max_tokens=max_tokens, stream=True, seed=1):
        delta = chunk["choices"][0]["delta"].get("content")
        if delta:
            now = time.perf_counter()
            first = first or now
            last = now
            pieces += 1
    return first - start, (pieces - 1) / (last - first), pieces


def http_run(client: httpx.Client, max_tokens: int) -> tuple[float, float, int]:
    body = {
        "model": "smollm2",
        "messages": PROMPT,
        "temperature": 0,
        "max_tokens": max_tokens,
        "seed": 1,
        "stream": True,
    }
    start = time.perf_counter()
    first = last = None
    pieces = 0
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                pieces += 1
    return first - start, (pieces - 1) / (last - first), pieces


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "local_speed.json")
    args = parser.parse_args()

    from llama_cpp import Llama

    threads = os.cpu_count() or 2
    llm = Llama(model_path=str(packaged_model_path()), n_ctx=2048, n_threads=threads, verbose=False)
    direct, http = [], []
    with SlipwayServer() as server, httpx.Client(base_url=server.url, timeout=120) as client:
        http_run(client, 8)  # warm up both
        direct_run(llm, 8)
        for _ in range(args.runs):
            direct.append(direct_run(llm, args.max_tokens))
            http.append(http_run(client, args.max_tokens))

    def med(rows: list, i: int) -> float:
        return statistics.median(r[i] for r in rows)

    result = {
        "runs": args.runs,
        "max_tokens": args.max_tokens,
        "direct": {"ttft_ms": med(direct, 0) * 1000, "tokens_per_s": med(direct, 1), "pieces": med(direct, 2)},
        "slipway": {"ttft_ms": med(http, 0) * 1000, "tokens_per_s": med(http, 1), "pieces": med(http, 2)},
    }
    result["ratio_tokens_per_s"] = result["slipway"]["tokens_per_s"] / result["direct"]["tokens_per_s"]
    result["ttft_overhead_ms"] = result["slipway"]["ttft_ms"] - result["direct"]["ttft_ms"]
    result["ttft_overhead_ms_paired_median"] = statistics.median(
        (h[0] - d[0]) * 1000 for h, d in zip(http, direct, strict=True)
    )
    print(f"local model speed, {args.runs} runs each, {args.max_tokens} tokens max, medians")
    print(
        f"  llama-cpp-python direct : {result['direct']['tokens_per_s']:7.1f} tok/s   TTFT {result['direct']['ttft_ms']:7.1f} ms"
    )
    print(
        f"  through Slipway (HTTP)  : {result['slipway']['tokens_per_s']:7.1f} tok/s   TTFT {result['slipway']['ttft_ms']:7.1f} ms"
    )
    print(f"  ratio tokens/s (Slipway/direct): {result['ratio_tokens_per_s']:.3f}   (target >= 0.95)")
    print(
        f"  TTFT overhead: {result['ttft_overhead_ms']:.2f} ms (paired median {result['ttft_overhead_ms_paired_median']:.2f} ms; target <= 5 ms)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
