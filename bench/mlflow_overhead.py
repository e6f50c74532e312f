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
        for r in range(args.rounds):
            plain.append(timed(["score", str(preds), "--out", str(work / f"plain-{r}")]))
            store = f"sqlite:///{work}/mlflow-{r}.db"
            logged.append(timed(["score", str(preds), "--out", str(work / f"logged-{r}"), "--mlflow-uri", store]))
            print(f"round {r + 1}: score {plain[-1]:.2f} s, score --mlflow {logged[-1]:.2f} s", flush=True)
    base, with_mlflow = statistics.median(plain), statistics.median(logged)
    added = with_mlflow - base
    result = {
        "pairs": args.pairs,
        "score_s": base,
        "score_mlflow_s": with_mlflow,
        "added_s": added,
        "added_share": added / base,
        "target_met": added < 2.0 or added / base < 0.10,
    }
    print(
        f"{args.pairs} pairs: score {base:.2f} s, with --mlflow {with_mlflow:.2f} s: +{added:.2f} s "
        f"({added / base:.0%} of the run); target (< 2 s or < 10%): {'met' if result['target_met'] else 'not met'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
