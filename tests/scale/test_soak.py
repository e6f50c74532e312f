"""The soak: a steady moderate load across the three replicas for `SLIPWAY_SCALE_SOAK_S` seconds
(10 minutes by hand: `bash scripts/scale.sh`), sampling each replica's RSS and open file descriptors.
Memory flat (within 10% between minute 2 and the end), no descriptor growth, p99 latency stable.
Not part of `scripts/test.sh` (it would add ten minutes to every run); its figures are in the report."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.scale.cluster import Cluster
from tests.scale.load import Background, Kind, percentile

SOAK_S = float(os.environ.get("SLIPWAY_SCALE_SOAK_S", "0"))
SAMPLE_S = 10.0
WARM_S = 120.0  # memory is compared from minute 2: imports, pools and caches are built by then

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.scale,
    pytest.mark.skipif(SOAK_S <= 0, reason="the soak runs by hand: bash scripts/scale.sh (SLIPWAY_SCALE_SOAK_S)"),
    pytest.mark.timeout(SOAK_S + 300),
]


def test_a_steady_load_leaves_memory_descriptors_and_latency_flat(cluster: Cluster, figures: dict[str, Any]) -> None:
    key = cluster.keys.admin
    kinds = [Kind("fast", key), Kind("stream", key, stream=True), Kind("fast", key)]
    samples: list[dict[str, Any]] = []
    with Background(cluster.url, kinds, 15) as load:
        while load.clock() < SOAK_S:
            samples.append({"t": round(load.clock(), 1), **{f"r{i}": cluster.replica_stat(i) for i in range(3)}})
            time.sleep(SAMPLE_S)
    results = load.results
    minutes: dict[int, list[float]] = {}
    for r in results:
        if r.ok and not r.kind.stream:
            minutes.setdefault(int(r.started // 60), []).append((r.ended - r.started) * 1000)
    p99_by_minute = {m: round(percentile(v, 99), 1) for m, v in sorted(minutes.items())}
    warm = [s for s in samples if s["t"] >= WARM_S]
    assert len(warm) >= 2, "the soak is too short to compare from minute 2"
    growth = {f"r{i}": warm[-1][f"r{i}"]["rss_kib"] / warm[0][f"r{i}"]["rss_kib"] - 1 for i in range(3)}
    fd_growth = {f"r{i}": warm[-1][f"r{i}"]["fds"] - warm[0][f"r{i}"]["fds"] for i in range(3)}
    figures["soak"] = {
        "seconds": SOAK_S,
        "requests": len(results),
        "failed": sum(not r.ok for r in results),
        "rss_growth_from_minute_2": {k: round(v, 4) for k, v in growth.items()},
        "fd_growth_from_minute_2": fd_growth,
        "p99_ms_by_minute": p99_by_minute,
        "samples": samples,
    }
    assert not [r for r in results if not r.ok], "every request of the soak succeeded"
    assert all(abs(g) <= 0.10 for g in growth.values()), growth
    assert all(g <= 2 for g in fd_growth.values()), fd_growth
    steady = [v for m, v in p99_by_minute.items() if m >= 2 and m < max(p99_by_minute)]
    assert max(steady) <= 2 * min(steady), p99_by_minute
