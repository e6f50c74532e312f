"""Stall-free streams: how many concurrent streams a gateway carries while each still arrives on time.

The mock sends a text chunk every `pace_ms` (20 ms: a fast model's token rate); N streams are opened
at once, one connection each, and the load generator records the gap between consecutive text chunks
of every stream. A gateway that keeps up shows gaps near the pace; one that stalls shows long gaps.
The figure per N is the p99 gap (and p50), for the bare mock and through each gateway in the same run;
"carries" is the largest N whose p99 gap stays within `limit_ms` (25 ms: 5 ms over the pace).

    python -m bench --only streams        (part of the full run)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import gateways
from bench.overhead import loadgen, percentile

LEVELS = (16, 64, 256, 512)
PACE_MS = 20.0
CHUNKS = 50  # one second of streaming per request
LIMIT_MS = 25.0


def burst(target: gateways.Target, streams: int, headers: list[str] | None = None) -> dict[str, Any]:
    cmd = [
        "--url", target.url, "--model", gateways.MODEL,
        "--concurrency", str(streams), "--requests", str(streams), "--warmup", "0", "--stream", "--gaps",
    ]  # fmt: skip
    if target.key:
        cmd += ["--key", target.key]
    for header in headers or target.headers:
        cmd += ["--header", header]
    data = loadgen(cmd)
    gaps = data.pop("gaps_ms")
    return {
        "target": target.name,
        "streams": streams,
        "ok": len(data.pop("latencies_ms")),
        "failed": streams - sum(v for k, v in data["statuses"].items() if str(k) == "200"),
        "gap_p50_ms": percentile(gaps, 0.5),
        "gap_p99_ms": percentile(gaps, 0.99),
        "gap_max_ms": max(gaps) if gaps else float("nan"),
    }


@contextlib.contextmanager
def _targets(work: Path, peers: list[Callable[[gateways.Target], Any]]) -> Iterator[list[gateways.Target]]:
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(gateways.mock_upstream(CHUNKS, PACE_MS, work))
        found = [mock, stack.enter_context(gateways.slipway(mock, work))]
        found += [stack.enter_context(peer(mock)) for peer in peers]
        yield found


def run(
    work: Path,
    *,
    levels: tuple[int, ...] = LEVELS,
    peers: list[Callable[[gateways.Target], Any]] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    rows = []
    with _targets(work, peers or []) as found:
        for streams in levels:
            for target in found:
                row = burst(target, streams)
                rows.append(row)
                log(
                    f"  {streams:>4} streams {target.name:<10} gap p50 {row['gap_p50_ms']:7.2f} ms  "
                    f"p99 {row['gap_p99_ms']:7.2f} ms  max {row['gap_max_ms']:8.2f} ms  failed {row['failed']}"
                )
    carries = {}
    for name in {r["target"] for r in rows}:
        fine = [r["streams"] for r in rows if r["target"] == name and r["failed"] == 0 and r["gap_p99_ms"] <= LIMIT_MS]
        carries[name] = max(fine) if fine else 0
    return {"pace_ms": PACE_MS, "limit_ms": LIMIT_MS, "rows": rows, "carries": carries}
