"""`python -m bench`: the regression guard's arithmetic (on made-up results, named as such), and a
quick real run against the mock and Slipway (LiteLLM is left out here: installing it takes minutes;
the full command runs it). Nothing here asserts a time: only that figures are produced and written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from tests.servers import ROOT

FAKE_RESULTS = {
    "overhead": [
        {"scenario": "plain", "concurrency": 1, "target": "direct", "rps": 8000.0, "overhead_p99_ms": None},
        {"scenario": "plain", "concurrency": 1, "target": "slipway", "rps": 400.0, "overhead_p99_ms": 2.0},
        {"scenario": "plain", "concurrency": 1, "target": "litellm", "rps": 100.0, "overhead_p99_ms": 10.0},
    ],
    "memory": [{"target": "slipway", "growth_ratio": 1.01}],
    "local": {"ratio_tokens_per_s": 0.97},
    "eval": {"ratio": 3.0},
}


def test_guard_metrics_are_in_run_ratios() -> None:
    metrics = report.guard_metrics(FAKE_RESULTS)
    assert metrics == {
        "rps_vs_direct.plain.c1": 0.05,
        "rps_vs_litellm.plain.c1": 4.0,
        "p99_overhead_vs_litellm.plain.c1": 0.2,
        "memory_growth.slipway": 1.01,
        "local_tokens_ratio": 0.97,
        "eval_speedup": 3.0,
    }


def test_compare_flags_only_ratios_more_than_20_percent_worse() -> None:
    baseline = report.guard_metrics(FAKE_RESULTS)
    now = dict(baseline)
    now["rps_vs_litellm.plain.c1"] = 3.1  # higher is better: 0.775 of the baseline -> regressed
    now["eval_speedup"] = 2.5  # 0.83: within the tolerance
    now["p99_overhead_vs_litellm.plain.c1"] = 0.26  # lower is better: 0.2/0.26 = 0.77 -> regressed
    now["memory_growth.slipway"] = 1.0  # better
    rows = {r["metric"]: r for r in report.compare(now, baseline)}
    assert {name for name, r in rows.items() if r["regressed"]} == {
        "rps_vs_litellm.plain.c1",
        "p99_overhead_vs_litellm.plain.c1",
    }
    assert rows["memory_growth.slipway"]["factor"] > 1 and rows["eval_speedup"]["factor"] == pytest.approx(
        0.833, abs=1e-3
    )


def test_the_committed_baseline_is_readable() -> None:
    baseline = report.load_baseline()
    assert baseline, "bench/baseline.json holds the guarded ratios"
    assert all(isinstance(v, float | int) for v in baseline.values())
    assert any(name.startswith("rps_vs_litellm.") for name in baseline), "the baseline was taken with LiteLLM"


@pytest.mark.slow
def test_quick_run_writes_results_summary_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "results"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--only",
            "overhead,memory,streams",
            "--quick",
            "--no-litellm",
            "--no-portkey",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    cells = {(c["scenario"], c["concurrency"], c["target"]) for c in results["overhead"]}
    # slipway-w2: two worker processes on a Postgres database of the bench's own and Redis (--workers 2).
    targets = ("direct", "slipway", "slipway-w2")
    assert cells == {(s, c, t) for s in ("plain", "stream") for c in (1, 16) for t in targets}
    for cell in results["overhead"]:
        assert cell["failed"] == 0 and cell["p50_ms"] > 0 and cell["rps"] > 0, cell
        if cell["target"] == "slipway":
            assert "overhead_p50_ms" in cell and "overhead_p99_ms" in cell
            if cell["scenario"] == "stream":
                assert cell["ttfc_p50_ms"] > 0 and "overhead_ttfc_p50_ms" in cell
    [memory] = results["memory"]
    assert memory["target"] == "slipway" and memory["rss_after_1000_mib"] > 0 and memory["growth_ratio"] > 0
    assert memory["rss_after_5000_mib"] > 0 and memory["growth_ratio_long"] > 0
    rows = results["streams"]["rows"]
    assert {(r["streams"], r["target"]) for r in rows} == {(n, t) for n in (16, 64) for t in ("direct", "slipway")}
    assert all(r["failed"] == 0 and r["gap_p50_ms"] > 10 for r in rows), rows  # the mock paces 20 ms
    summary = (out / "summary.md").read_text()
    assert "## Gateway overhead" in summary and "## Memory" in summary and "## Regression guard" in summary
    assert "## Stall-free streams" in summary and "## Issue #18's targets" in summary
    assert (out / "overhead.png").stat().st_size > 5000 and (out / "latency.png").stat().st_size > 5000
    assert "rps_vs_direct.plain.c1" in results["guard_metrics"]


@pytest.mark.slow
def test_http_clients_bench_compares_every_installed_client() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "bench.http_clients", "--streams", "30", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in r.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) == {"httpx", "httpx2", "aiohttp"}, r.stdout
    assert rows["httpx"][1] == 1.0 and all(v > 0 for row in rows.values() for v in row)
