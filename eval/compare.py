"""A/B comparison of two runs on the same cases: per-metric difference, paired bootstrap p-value,
per-case wins and losses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from eval import metrics


def _rows(run_dir: Path) -> dict[str, dict[str, Any]]:
    rows = {}
    for line in (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("error") is None and row.get("metrics"):
            rows[row["id"]] = row
    return rows


def compare(dir_a: str | Path, dir_b: str | Path, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """B minus A on the cases both scored. p is the paired bootstrap's two-sided p-value."""
    a, b = _rows(Path(dir_a)), _rows(Path(dir_b))
    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two runs share no scored case ids")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(ids), size=(resamples, len(ids)))
    result: dict[str, Any] = {"a": str(dir_a), "b": str(dir_b), "n": len(ids), "metrics": {}, "cases": []}
    for name in metrics.ALL:
        va = np.array([a[i]["metrics"][name] for i in ids])
        vb = np.array([b[i]["metrics"][name] for i in ids])
        if name in metrics.CORPUS:
            fn = metrics.corpus_bleu if name == "bleu" else metrics.corpus_chrf
            pa, pb = [a[i]["prediction"] for i in ids], [b[i]["prediction"] for i in ids]
            refs = [a[i]["references"] for i in ids]
            delta = fn(pb, refs) - fn(pa, refs)
            samples = np.array(
                [
                    fn([pb[j] for j in d], [refs[j] for j in d]) - fn([pa[j] for j in d], [refs[j] for j in d])
                    for d in draws[: min(resamples, 300)]
                ]
            )
        else:
            delta = float(vb.mean() - va.mean())
            samples = (vb - va)[draws].mean(axis=1)
        # Two-sided: how often the resampled difference lands on the other side of zero.
        p = float(min(1.0, 2 * min((samples <= 0).mean(), (samples >= 0).mean()))) if delta else 1.0
        result["metrics"][name] = {
            "a": float(va.mean()) if name not in metrics.CORPUS else None,
            "b": float(vb.mean()) if name not in metrics.CORPUS else None,
            "delta": float(delta),
            "p_value": p,
            "wins": int((vb > va).sum()),
            "losses": int((vb < va).sum()),
            "ties": int((vb == va).sum()),
        }
    for i in ids:
        result["cases"].append(
            {
                "id": i,
                "prompt": a[i]["prompt"],
                "a": a[i]["prediction"],
                "b": b[i]["prediction"],
                "delta_meteor": b[i]["metrics"]["meteor"] - a[i]["metrics"]["meteor"],
            }
        )
    return result
