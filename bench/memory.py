"""Gateway memory: resident memory of the serving process after 1,000 and after 10,000 requests
(non-streaming, 16 concurrent clients, against the instant mock), for Slipway and LiteLLM. Unbounded
growth (a cache, a list of requests, a leak) shows as a ratio well above 1."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import gateways
from bench.overhead import load


def measure(target: gateways.Target, first: int, total: int) -> dict[str, Any]:
    start = target.rss_mib()
    load(target, 16, first, 0, stream=False)
    after_first = target.rss_mib()
    load(target, 16, total - first, 0, stream=False)
    after_total = target.rss_mib()
    return {
        "target": target.name,
        "rss_start_mib": round(start, 1),
        f"rss_after_{first}_mib": round(after_first, 1),
        f"rss_after_{total}_mib": round(after_total, 1),
        "growth_ratio": round(after_total / after_first, 4),
    }


def run(work: Path, *, first: int = 1000, total: int = 10_000, litellm: bool = True, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    rows = []
    with gateways.mock_upstream(20, 0.0, work) as mock:
        makers = [lambda: gateways.slipway(mock, work)]
        if litellm:
            makers.append(lambda: gateways.litellm(mock, work))
        for make in makers:
            with contextlib.ExitStack() as stack:
                target = stack.enter_context(make())
                row = measure(target, first, total)
                rows.append(row)
                log(
                    f"  {row['target']:<8} RSS after {first:,}: {row[f'rss_after_{first}_mib']:.1f} MiB, "
                    f"after {total:,}: {row[f'rss_after_{total}_mib']:.1f} MiB (x{row['growth_ratio']:.3f})"
                )
    return rows
