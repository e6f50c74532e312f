"""Judge throughput with the embedded model: the 60-case sample, each answer graded by SmolLM2 through
`eval.score(..., judge="local")` with the cache off, timed against the same scoring without a judge.

    .venv/bin/python -m bench.judge_speed [--cases 60]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from eval import load_dataset, score
from tests.servers import ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cases = load_dataset(ROOT / "eval" / "datasets" / "sample.jsonl")[: args.cases]
    # The answers to grade: each case's reference with its last word dropped (near misses, not copies).
    preds = [
        {"id": c.id, "prompt": c.prompt_text, "prediction": " ".join(c.reference[0].split()[:-1]) or "?",
         "reference": c.reference, "context": c.metadata.get("context")}
        for c in cases
    ]  # fmt: skip
    t0 = time.perf_counter()
    plain = score([{k: v for k, v in p.items() if k != "context"} for p in preds], resamples=200)
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    judged = score(preds, resamples=200, judge="local", use_cache=False)
    judged_s = time.perf_counter() - t0
    grade = judged.summary["metrics"]["judge"]
    result = {
        "cases": len(preds),
        "score_s": plain_s,
        "score_with_judge_s": judged_s,
        "judge_cases_per_s": len(preds) / (judged_s - plain_s),
        "mean_grade": grade["value"],
        "ci": [grade["ci_low"], grade["ci_high"]],
        "not_graded": grade["not_graded"],
        "meteor": plain.values["meteor"],
    }
    print(
        f"{len(preds)} cases: scoring {plain_s:.1f} s; with the embedded judge {judged_s:.1f} s: "
        f"{result['judge_cases_per_s']:.2f} cases/s judged; mean grade {grade['value']:.2f} "
        f"[{grade['ci_low']:.2f}, {grade['ci_high']:.2f}], {grade['not_graded']} not graded"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
