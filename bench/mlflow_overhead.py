"""What `--mlflow` adds to a run: `python -m eval score` on 1,000 pairs, with and without logging to a
local MLflow store (SQLite, a fresh one per round), whole commands timed, rounds interleaved.

Issue #19's target: the time `--mlflow` adds is under 10% of the run, or under 2 s. Logging costs
MLflow's import (pandas, SQLAlchemy...), the store's set-up, and the writes (params, ~30 metrics,
a 1,000-row table, three artifacts, the dataset input); the figures say which dominates.

    .venv/bin/python -m bench.mlflow_overhead [--pairs 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.eval_speed import pairs
from tests.mlflow_server import MlflowServer
from tests.servers import ROOT


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "eval", *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slipway-mlflow-bench-") as tmp:
        work = Path(tmp)
        preds = work / "preds.jsonl"
        with preds.open("w") as fh:
            for i, (pred, ref) in enumerate(pairs(args.pairs)):
                fh.write(json.dumps({"id": str(i), "prediction": pred, "reference": ref}) + "\n")
        plain: list[float] = []
        logged: list[float] = []
        server: list[float] = []
        # An evaluator's store exists before the run it logs: create it once (MLflow's schema
        # migrations), untimed apart from this line, then log every round into it.
        store = f"sqlite:///{work}/mlflow.db"
        first = timed(["score", str(preds), "--out", str(work / "first"), "--mlflow-uri", store])
        print(f"first run into a new store (its tables created): {first:.2f} s", flush=True)
        with MlflowServer(work / "server") as url:
            for r in range(args.rounds):
                plain.append(timed(["score", str(preds), "--out", str(work / f"plain-{r}")]))
                logged.append(timed(["score", str(preds), "--out", str(work / f"logged-{r}"), "--mlflow-uri", store]))
                server.append(timed(["score", str(preds), "--out", str(work / f"server-{r}"), "--mlflow-uri", url]))
                print(
                    f"round {r + 1}: score {plain[-1]:.2f} s, --mlflow to SQLite {logged[-1]:.2f} s, "
                    f"to a server {server[-1]:.2f} s",
                    flush=True,
                )
    base = statistics.median(plain)
    result: dict[str, object] = {"pairs": args.pairs, "score_s": base}
    for name, times in (("sqlite", logged), ("server", server)):
        added = statistics.median(times) - base
        met = added < 2.0 or added / base < 0.10
        result[name] = {"with_mlflow_s": statistics.median(times), "added_s": added, "target_met": met}
        print(
            f"{args.pairs} pairs: score {base:.2f} s; with --mlflow to {name} {statistics.median(times):.2f} s: "
            f"+{added:.2f} s ({added / base:.0%} of the run); target (< 2 s or < 10%): {'met' if met else 'not met'}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
