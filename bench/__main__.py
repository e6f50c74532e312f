"""`python -m bench`: every benchmark in one run, side by side, written to bench/results/.

    python -m bench                      # all: gateway overhead (direct, Slipway, LiteLLM, Portkey),
                                         # memory, stall-free streams, profile, local model speed,
                                         # evaluation speed
    python -m bench --only overhead,memory --no-litellm --quick
    python -m bench --save-baseline      # also write bench/baseline.json from this run

Prints and writes a Markdown summary (bench/results/summary.md) with plots, the JSON results
(bench/results/results.json), and flags any guarded ratio more than 20% worse than the committed
baseline, and says which of issue #18's targets this run meets. Numbers only: nothing here asserts a
time. The first run installs LiteLLM into its own virtual environment and Portkey's gateway with npm
(both under ~/.cache/slipway/bench), which takes a minute or two.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from bench import gateways, memory, overhead, profile, report, streams
from tests.servers import ROOT

RESULTS = Path(__file__).resolve().parent / "results"
ALL = ("overhead", "memory", "streams", "profile", "local", "eval")

cli = typer.Typer(add_completion=False, help=__doc__.splitlines()[0])


def _say(text: str) -> None:
    print(text, flush=True)


def _sub(module: str, out: Path, *args: str) -> dict:
    subprocess.run([sys.executable, "-m", module, "--json", str(out), *args], cwd=ROOT, check=True)
    return json.loads(out.read_text())


@cli.command()
def main(
    only: Annotated[str, typer.Option(help=f"Comma-separated subset of: {', '.join(ALL)}.")] = ",".join(ALL),
    quick: Annotated[bool, typer.Option(help="Fewer requests and rounds (a smoke run, not for figures).")] = False,
    litellm: Annotated[bool, typer.Option("--litellm/--no-litellm", help="Include LiteLLM's proxy.")] = True,
    portkey: Annotated[bool, typer.Option("--portkey/--no-portkey", help="Include Portkey's gateway (Node).")] = True,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per overhead cell (spread).")] = 3,
    workers: Annotated[
        int, typer.Option(min=1, help="Also Slipway with this many worker processes (Postgres, Redis); 1: not.")
    ] = 2,
    out: Annotated[Path, typer.Option(help="Where results go.")] = RESULTS,
    save_baseline: Annotated[
        bool, typer.Option("--save-baseline", help="Write bench/baseline.json from this run.")
    ] = False,
    baseline: Annotated[Path, typer.Option(help="The baseline to compare with.")] = report.BASELINE,
) -> None:
    chosen = [part.strip() for part in only.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s): {', '.join(unknown)}", param_hint="--only")
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "quick": quick,
            "note": "One run on one shared machine; compare ratios and overheads, not absolute times.",
        }
    }
    if litellm and ("overhead" in chosen or "memory" in chosen):
        gateways.litellm_python()
        results["meta"]["litellm"] = gateways.litellm_version()
    if portkey and ("overhead" in chosen or "streams" in chosen):
        gateways.portkey_installed()
        results["meta"]["portkey"] = gateways.portkey_version()
    plan = overhead.Plan(
        rounds=1 if quick else rounds,
        requests=100 if quick else 400,
        stream_requests=40 if quick else 120,
        warmup=10 if quick else 40,
        concurrency=(1, 16) if quick else (1, 4, 16, 64),
        litellm=litellm,
        portkey=portkey,
        workers=workers,
    )
    with gateways.workdir() as tmp:
        work = Path(tmp)
        if "overhead" in chosen:
            _say("gateway overhead (mock direct / Slipway / LiteLLM):")
            raw = overhead.run(plan, work, log=_say)
            results["overhead_raw"] = raw
            results["overhead"] = overhead.summarise(raw)
        if "memory" in chosen:
            _say("memory:")
            first, total, long = (200, 1000, 5000) if quick else (1000, 10_000, 100_000)
            results["memory"] = memory.run(work, first=first, total=total, long=long, litellm=litellm, log=_say)
        if "streams" in chosen:
            _say("stall-free streams:")
            peers = [lambda mock: gateways.portkey(mock, work)] if portkey else []
            if litellm:
                peers.insert(0, lambda mock: gateways.litellm(mock, work))
            levels = (16, 64) if quick else streams.LEVELS
            results["streams"] = streams.run(work, levels=levels, peers=peers, log=_say)
        if "profile" in chosen:
            _say("profile of Slipway's hot path:")
            results["profile"] = profile.run(
                work, requests=500 if quick else 3000, stream_requests=50 if quick else 300, log=_say
            )
    if "local" in chosen:
        _say("local model speed:")
        results["local"] = _sub(
            "bench.local_speed", out / "local_speed.json", *(["--runs", "2", "--max-tokens", "32"] if quick else [])
        )
    if "eval" in chosen:
        _say("evaluation speed:")
        results["eval"] = _sub("bench.eval_speed", out / "eval_speed.json", *(["--pairs", "500"] if quick else []))

    metrics = report.guard_metrics(results)
    results["guard_metrics"] = metrics
    guard = report.compare(metrics, report.load_baseline(baseline))
    images = report.plots(results, out)
    summary = report.markdown(results, guard, images)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "summary.md").write_text(summary)
    _say("\n" + summary)
    _say(f"written: {out / 'results.json'}, {out / 'summary.md'}" + "".join(f", {out / i}" for i in images))
    if save_baseline:
        report.save_baseline(metrics, results["meta"], baseline)
        _say(f"baseline written: {baseline}")


if __name__ == "__main__":
    cli()
