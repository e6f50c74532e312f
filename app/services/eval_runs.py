"""Evaluation runs the service shows to its web page, read-only: the run directories `python -m eval`
writes (summary.json, results.jsonl, report.html) found under `SLIPWAY_EVAL_RUNS_DIR`.

Why the service reads files rather than a database: the harness already writes one directory per run,
the continuous-evaluation job can write to a shared volume, and nothing here needs to be stored twice.
Run ids are directory names, checked to be plain names of direct children (no path ever comes from a
request). A comparison is the harness's own paired bootstrap (`eval.compare`), run in a thread.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from app.core.errors import InvalidRequest, NotFound

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Cases of a comparison sent to the page: the largest regressions first (the report has them all).
COMPARE_CASES = 20


def _metrics(summary: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name, value in (summary.get("metrics") or {}).items():
        if isinstance(value, dict) and isinstance(value.get("value"), int | float):
            out[name] = {"value": value["value"], "ci_low": value.get("ci_low"), "ci_high": value.get("ci_high")}
    return out


class EvalRuns:
    def __init__(self, root: Path | None) -> None:
        self.root = root

    def list(self) -> list[dict[str, Any]]:
        """Every readable run, oldest first (a trend reads left to right)."""
        if self.root is None or not self.root.is_dir():
            return []
        runs = []
        for child in self.root.iterdir():
            if not (RUN_ID.match(child.name) and (child / "summary.json").is_file()):
                continue
            try:
                summary = json.loads((child / "summary.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a run being written, or not a run: not shown
            if not isinstance(summary, dict):
                continue
            runs.append(
                {
                    "id": child.name,
                    "object": "eval.run",
                    "dataset": summary.get("dataset"),
                    "dataset_sha256": summary.get("dataset_sha256"),
                    "target": summary.get("target"),
                    "model": summary.get("model"),
                    "chain": summary.get("chain"),
                    "started": summary.get("started"),
                    "n": summary.get("n"),
                    "errors": summary.get("errors"),
                    "metrics": _metrics(summary),
                    "has_report": (child / "report.html").is_file(),
                }
            )
        return sorted(runs, key=lambda r: (str(r["started"] or ""), r["id"]))

    def path(self, run_id: str) -> Path:
        if self.root is None:
            raise NotFound("No evaluation runs folder is configured (SLIPWAY_EVAL_RUNS_DIR).", code="run_not_found")
        if not RUN_ID.match(run_id) or not (self.root / run_id / "summary.json").is_file():
            raise NotFound(f"No evaluation run {run_id!r}.", param="run_id", code="run_not_found")
        return self.root / run_id

    def report(self, run_id: str) -> Path:
        path = self.path(run_id) / "report.html"
        if not path.is_file():
            raise NotFound(f"Run {run_id!r} has no report.html.", param="run_id", code="report_not_found")
        return path

    async def compare(self, a: str, b: str) -> dict[str, Any]:
        """B minus A with the harness's paired bootstrap; 400 when the runs cannot be paired."""
        from eval.compare import compare

        path_a, path_b = self.path(a), self.path(b)
        try:
            result = await asyncio.to_thread(compare, path_a, path_b)
        except (ValueError, KeyError, OSError) as exc:
            raise InvalidRequest(f"These runs cannot be compared: {exc}", code="not_comparable") from None
        return {
            "object": "eval.comparison",
            "a": a,
            "b": b,
            "n": result["n"],
            "differences": result["differences"],
            "metrics": result["metrics"],
            "cases": result["cases"][:COMPARE_CASES],
        }
