"""Gateway memory: resident memory of the serving process after 1,000 and after 10,000 requests
(non-streaming, 16 concurrent clients, against the instant mock), for Slipway and LiteLLM, and for
Slipway after 100,000 too (`long`). Unbounded growth (a cache, a list of requests, a leak) shows as a
ratio well above 1."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import gateways
from bench.overhead import load


def measure(target: gateways.Target, first: int, total: int, long: int | None = None) -> dict[str, Any]:
    start = target.rss_mib()
    load(target, 16, first, 0, stream=False)
    after_first = target.rss_mib()
    load(target, 16, total - first, 0, stream=False)
    after_total = target.rss_mib()
    row = {
        "target": target.name,
        "rss_start_mib": round(start, 1),
        f"rss_after_{first}_mib": round(after_first, 1),
        f"rss_after_{total}_mib": round(after_total, 1),
        "growth_ratio": round(after_total / after_first, 4),
    }
    if long is not None:
        done = total
        while done < long:  # in slices: the load generator keeps every latency in memory
            step = min(20_000, long - done)
            load(target, 16, step, 0, stream=False)
            done += step
        after_long = target.rss_mib()
        row[f"rss_after_{long}_mib"] = round(after_long, 1)
        row["long_requests"] = long
        row["growth_ratio_long"] = round(after_long / after_total, 4)
    return row


def run(
    work: Path,
    *,
    first: int = 1000,
    total: int = 10_000,
    long: int | None = 100_000,
    litellm: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    rows = []
    with gateways.mock_upstream(20, 0.0, work) as mock:
        makers = [(lambda: gateways.slipway(mock, work), long)]
        if litellm:  # LiteLLM serves ~130 req/s here: 100,000 requests would take a quarter of an hour
            makers.append((lambda: gateways.litellm(mock, work), None))
        for make, until in makers:
            with contextlib.ExitStack() as stack:
                target = stack.enter_context(make())
                row = measure(target, first, total, until)
                rows.append(row)
                log(
                    f"  {row['target']:<8} RSS after {first:,}: {row[f'rss_after_{first}_mib']:.1f} MiB, "
                    f"after {total:,}: {row[f'rss_after_{total}_mib']:.1f} MiB (x{row['growth_ratio']:.3f})"
                    + (
                        f", after {until:,}: {row[f'rss_after_{until}_mib']:.1f} MiB (x{row['growth_ratio_long']:.3f})"
                        if until
                        else ""
                    )
                )
    return rows
