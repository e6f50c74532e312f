"""Evaluation runs the service shows to its web page, read-only: the run directories `python -m eval`
writes (summary.json, results.jsonl, report.html) found under `SLIPWAY_EVAL_RUNS_DIR`, and, when
`SLIPWAY_EVAL_MLFLOW_URI` names a tracking server, the runs `--mlflow-uri` logged there (eval_mlflow.py).

Why the service reads files rather than a database: the harness already writes one directory per run,
the continuous-evaluation job can write to a shared volume, and nothing here needs to be stored twice.
Run ids are directory names, checked to be plain names of direct children (no path ever comes from a
request). A comparison is the harness's own paired bootstrap (`eval.compare`), run in a thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from app.core.errors import InvalidRequest, NotFound
from app.services.eval_mlflow import PREFIX, MlflowRuns, MlflowUnavailable

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
    def __init__(self, root: Path | None, mlflow: MlflowRuns | None = None) -> None:
        self.root = root
        self.mlflow = mlflow

    async def listing(self) -> dict[str, Any]:
        """Every run the page can show, oldest first: the folder's, then MLflow's merged in. An MLflow
        server that does not answer is reported (`mlflow.error`), and the folder's runs still listed."""
        runs = await asyncio.to_thread(self.list)
        tracking: dict[str, Any] | None = None
        if self.mlflow is not None:
            tracking = {"experiment": self.mlflow.experiment, "error": None}
            try:
                runs += await self.mlflow.list()
            except MlflowUnavailable as exc:
                tracking["error"] = str(exc)
        runs.sort(key=lambda r: (str(r["started"] or ""), r["id"]))
        configured = self.root is not None or self.mlflow is not None
        return {"object": "list", "data": runs, "configured": configured, "mlflow": tracking}

    def _mlflow_id(self, run_id: str) -> str | None:
        """The MLflow run id behind a page's run id, when it names one."""
        if self.mlflow is not None and run_id.startswith(PREFIX) and RUN_ID.match(run_id):
            return run_id.removeprefix(PREFIX)
        return None

    async def report_bytes(self, run_id: str) -> bytes | Path:
        """A run's report.html: the file of a folder run, the artifact of an MLflow run."""
        mlflow_id = self._mlflow_id(run_id)
        if mlflow_id is None:
            return self.report(run_id)
        assert self.mlflow is not None
        try:
            return await self.mlflow.artifact(mlflow_id, "report.html")
        except MlflowUnavailable as exc:
            raise NotFound(str(exc), param="run_id", code="report_not_found") from None

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
                    "source": "folder",
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

    async def _local(self, run_id: str, scratch: Path) -> Path:
        """A directory holding the run's results.jsonl and summary.json (an MLflow run's, downloaded)."""
        mlflow_id = self._mlflow_id(run_id)
        if mlflow_id is None:
            return self.path(run_id)
        assert self.mlflow is not None
        folder = scratch / run_id
        folder.mkdir()
        for name in ("results.jsonl", "summary.json"):
            try:
                content = await self.mlflow.artifact(mlflow_id, name)
            except MlflowUnavailable as exc:
                raise NotFound(str(exc), param="run_id", code="run_not_found") from None
            except NotFound:
                raise NotFound(
                    f"No evaluation run {run_id!r} with {name}.", param="run_id", code="run_not_found"
                ) from None
            (folder / name).write_bytes(content)
        return folder

    async def compare(self, a: str, b: str) -> dict[str, Any]:
        """B minus A with the harness's paired bootstrap; 400 when the runs cannot be paired."""
        from eval.compare import compare

        with tempfile.TemporaryDirectory(prefix="slipway-compare-") as scratch:
            path_a = await self._local(a, Path(scratch))
            path_b = await self._local(b, Path(scratch)) if b != a else path_a
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
