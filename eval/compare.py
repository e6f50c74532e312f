"""A/B comparison of two runs on the same cases: per-metric difference, paired bootstrap p-value,
per-case wins and losses.

The test is sacrebleu's paired bootstrap resampling (Koehn 2004, as Moses' and `sacrebleu
--paired-bs` run it): the same resampled case sets score both runs; p is the share of resamples
whose centred absolute difference exceeds the observed one, (c + 1) / (resamples + 1). With seed
12345 (sacrebleu's default) BLEU and chrF p-values equal sacrebleu's own `PairedTest`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from eval import metrics


def _rows(source: Any) -> dict[str, dict[str, Any]]:
    """Scored rows by id, from a run directory or from what `run`/`score` returned."""
    if hasattr(source, "rows"):
        rows = source.rows
    else:
        text = (Path(source) / "results.jsonl").read_text(encoding="utf-8")
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {str(r["id"]): r for r in rows if r.get("error") is None and r.get("metrics")}


#: What must match for B against A to be a like-for-like comparison (summary.json fields).
SETTINGS = ("target", "model", "chain", "dataset_sha256")
PARAMS = ("temperature", "seed", "max_tokens")


def _summary(source: Any) -> dict[str, Any]:
    if hasattr(source, "summary"):
        return dict(source.summary)
    path = Path(source) / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def differences(a_run: Any, b_run: Any) -> list[str]:
    """The settings A and B differ in (`model: a -> b`), so a reader knows what the delta measures."""
    a, b = _summary(a_run), _summary(b_run)
    out = [f"{k}: {a.get(k)} -> {b.get(k)}" for k in SETTINGS if a.get(k) != b.get(k)]
    pa, pb = a.get("params") or {}, b.get("params") or {}
    out += [f"{k}: {pa.get(k)} -> {pb.get(k)}" for k in PARAMS if pa.get(k) != pb.get(k)]
    return out


def paired_p_value(a: np.ndarray, b: np.ndarray, observed: float) -> float:
    """sacrebleu's paired bootstrap p-value from per-resample scores of both runs.

    One departure: when the two runs score the same on every resample (identical outputs), there is
    no difference to test and the p-value is 1. sacrebleu's formula gives its floor, 1/(n+1), there,
    which reads as "significant" for two identical systems.
    """
    if observed == 0 and np.array_equal(a, b):
        return 1.0
    diffs = np.abs(b - a)
    c = int(np.sum(diffs - diffs.mean() > abs(observed)))
    return (c + 1) / (len(diffs) + 1)


def _batch(rows: list[dict[str, Any]], refs: list[list[str]]) -> metrics.Batch:
    """Saved per-case scores, plus the sacrebleu statistics corpus BLEU/chrF are resampled from."""
    preds = [r["prediction"] for r in rows]
    return metrics.Batch(
        cases=[r["metrics"] for r in rows],
        stats={name: metrics.sacrebleu_stats(name, preds, refs) for name in metrics.CORPUS},
    )


def compare(a_run: Any, b_run: Any, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """B minus A on the cases both runs scored; each run is a directory or what `run`/`score` returned."""
    a, b = _rows(a_run), _rows(b_run)
    ids = [i for i in a if i in b]  # A's order
    if not ids:
        raise ValueError("the two runs share no scored case ids")
    differing = [i for i in ids if a[i]["references"] != b[i]["references"]]
    if differing:
        raise ValueError(f"the runs have different references for case(s) {', '.join(differing[:5])}")
    refs = [a[i]["references"] for i in ids]
    batch_a, batch_b = _batch([a[i] for i in ids], refs), _batch([b[i] for i in ids], refs)
    counts = metrics.draws(len(ids), resamples, seed)
    result: dict[str, Any] = {
        "a": str(a_run) if not hasattr(a_run, "rows") else "A",
        "b": str(b_run) if not hasattr(b_run, "rows") else "B",
        "n": len(ids),
        "only_a": len(set(a) - set(b)),
        "only_b": len(set(b) - set(a)),
        "resamples": resamples,
        "seed": seed,
        "differences": differences(a_run, b_run),
        "metrics": {},
        "cases": [],
    }
    for name in metrics.ALL:
        if name in metrics.CORPUS:
            value_a, value_b = batch_a.corpus(name), batch_b.corpus(name)
        else:
            value_a, value_b = float(batch_a.values(name).mean()), float(batch_b.values(name).mean())
        samples_a, samples_b = metrics.resampled(batch_a, name, counts), metrics.resampled(batch_b, name, counts)
        low, high = metrics.percentile_ci(samples_b - samples_a)
        per_a, per_b = batch_a.values(name), batch_b.values(name)
        result["metrics"][name] = {
            "a": value_a,
            "b": value_b,
            "delta": value_b - value_a,
            "ci_low": low,
            "ci_high": high,
            "p_value": paired_p_value(samples_a, samples_b, value_b - value_a),
            "wins": int((per_b > per_a).sum()),
            "losses": int((per_b < per_a).sum()),
            "ties": int((per_b == per_a).sum()),
        }
    for i in ids:
        result["cases"].append(
            {
                "id": i,
                "prompt": a[i].get("prompt", ""),
                "references": a[i]["references"],
                "a": a[i]["prediction"],
                "b": b[i]["prediction"],
                "delta_meteor": b[i]["metrics"]["meteor"] - a[i]["metrics"]["meteor"],
                "delta_bleu": b[i]["metrics"]["bleu"] - a[i]["metrics"]["bleu"],
                "deltas": {name: b[i]["metrics"][name] - a[i]["metrics"][name] for name in metrics.ALL},
            }
        )
    # Largest regression first (METEOR, then BLEU): the cases a reviewer reads before any other.
    result["cases"].sort(key=lambda c: (c["delta_meteor"], c["delta_bleu"]))
    return result
