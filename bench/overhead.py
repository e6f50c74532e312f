"""Gateway overhead, side by side in one run: the mock upstream directly, through Slipway, through
LiteLLM's proxy and Portkey's gateway, at each concurrency, non-streaming and streaming.

Two mocks serve the two scenarios: for non-streaming, a mock that answers at once (its SSE stream too,
with no pace: Slipway always streams from its upstream so cancellation and first-token timeouts work
for every request, LiteLLM asks for a plain completion; both get an instant answer); for streaming,
`chunks` chunks `pace_ms` apart. Targets are interleaved round by round so drift on this shared
machine hits each alike; each cell is warmed up first. The load generator runs in its own process
(`bench.loadgen`); `direct` shows what it can do against the bare mock.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import gateways
from tests.servers import ROOT


@dataclass
class Plan:
    concurrency: tuple[int, ...] = (1, 4, 16, 64)
    rounds: int = 3
    requests: int = 400
    stream_requests: int = 120
    warmup: int = 40
    chunks: int = 20
    pace_ms: float = 1.0
    litellm: bool = True
    portkey: bool = False
    #: Also Slipway with this many worker processes (on Postgres and Redis); 1: not.
    workers: int = 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def loadgen(cmd: list[str]) -> dict[str, Any]:
    """Run the load generator (`bench.loadgen` arguments) in its own process; its JSON result."""
    with tempfile.TemporaryDirectory(prefix="slipway-loadgen-") as tmp:
        result = Path(tmp) / "result.json"
        done = subprocess.run(
            [sys.executable, "-m", "bench.loadgen", *cmd, "--out", str(result)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(f"the load generator failed ({done.returncode}): {done.stderr[-2000:]}")
        data: dict[str, Any] = json.loads(result.read_text())
        return data


def load(target: gateways.Target, concurrency: int, requests: int, warmup: int, stream: bool) -> dict[str, Any]:
    cmd = [
        "--url", target.url, "--model", gateways.MODEL,
        "--concurrency", str(concurrency), "--requests", str(requests), "--warmup", str(warmup),
    ]  # fmt: skip
    if stream:
        cmd.append("--stream")
    if target.key:
        cmd += ["--key", target.key]
    for header in target.headers:
        cmd += ["--header", header]
    data = loadgen(cmd)
    lat, ttfc = data.pop("latencies_ms"), data.pop("ttfc_ms")
    data.update(
        p50_ms=percentile(lat, 0.5),
        p99_ms=percentile(lat, 0.99),
        ttfc_p50_ms=percentile(ttfc, 0.5) if ttfc else None,
        ttfc_p99_ms=percentile(ttfc, 0.99) if ttfc else None,
        ok=len(lat),
        sample_ms=lat[:: max(1, len(lat) // 400)],  # a thinned sample for the distribution plot
    )
    return data


@contextlib.contextmanager
def targets(plan: Plan, work: Path, *, stream: bool) -> Iterator[list[gateways.Target]]:
    pace = plan.pace_ms if stream else 0.0
    with contextlib.ExitStack() as stack:
        mock = stack.enter_context(gateways.mock_upstream(plan.chunks, pace, work))
        found = [mock]
        found.append(stack.enter_context(gateways.slipway(mock, work)))
        if plan.workers > 1:
            found.append(stack.enter_context(gateways.slipway(mock, work, workers=plan.workers)))
        if plan.litellm:
            found.append(stack.enter_context(gateways.litellm(mock, work)))
        if plan.portkey:
            found.append(stack.enter_context(gateways.portkey(mock, work)))
        yield found


def run(plan: Plan, work: Path, log: Any = print) -> list[dict[str, Any]]:
    """Every cell of (scenario, concurrency, target, round), as rows."""
    rows: list[dict[str, Any]] = []
    for stream in (False, True):
        scenario = "stream" if stream else "plain"
        with targets(plan, work, stream=stream) as found:
            for concurrency in plan.concurrency:
                n = plan.stream_requests if stream else plan.requests
                n = max(n, concurrency * 4)
                for round_ in range(plan.rounds):
                    for target in found:
                        result = load(target, concurrency, n, plan.warmup, stream)
                        result.update(scenario=scenario, target=target.name, round=round_)
                        rows.append(result)
                        log(
                            f"  {scenario:<6} c={concurrency:<3} round {round_ + 1} {target.name:<10} "
                            f"p50 {result['p50_ms']:8.2f} ms  p99 {result['p99_ms']:8.2f} ms  "
                            f"{result['rps']:8.0f} req/s"
                            + (f"  TTFC p50 {result['ttfc_p50_ms']:.2f} ms" if stream and result["ttfc_p50_ms"] is not None else "")
                            + (f"  errors {result['errors']} statuses {result['statuses']}" if result["ok"] < n else "")
                        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (scenario, concurrency, target): the median over rounds, its spread, and overhead vs direct."""
    cells: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["scenario"], row["concurrency"], row["target"]), []).append(row)
    out = []
    for (scenario, concurrency, target), runs in sorted(cells.items()):
        direct = cells.get((scenario, concurrency, "direct"), runs)

        def med(key: str, rs: list[dict[str, Any]]) -> float | None:
            values = [r[key] for r in rs if r.get(key) is not None]
            return statistics.median(values) if values else None

        entry: dict[str, Any] = {
            "scenario": scenario,
            "concurrency": concurrency,
            "target": target,
            "rounds": len(runs),
            "p50_ms": med("p50_ms", runs),
            "p99_ms": med("p99_ms", runs),
            "p50_spread_ms": [min(r["p50_ms"] for r in runs), max(r["p50_ms"] for r in runs)],
            "rps": med("rps", runs),
            "ttfc_p50_ms": med("ttfc_p50_ms", runs),
            "failed": sum(r["requests"] - r["ok"] for r in runs),
        }
        if target != "direct":
            # Overhead per round against the same round's direct run, then the median: pairs share drift.
            pairs = list(zip(runs, direct, strict=False))
            entry["overhead_p50_ms"] = statistics.median(r["p50_ms"] - d["p50_ms"] for r, d in pairs)
            entry["overhead_p99_ms"] = statistics.median(r["p99_ms"] - d["p99_ms"] for r, d in pairs)
            if scenario == "stream":
                ttfc = [r["ttfc_p50_ms"] - d["ttfc_p50_ms"] for r, d in pairs if r["ttfc_p50_ms"] and d["ttfc_p50_ms"]]
                entry["overhead_ttfc_p50_ms"] = statistics.median(ttfc) if ttfc else None
        out.append(entry)
    return out
