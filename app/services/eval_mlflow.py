"""Evaluation runs logged to an MLflow tracking server (`python -m eval ... --mlflow-uri URL`), read
through MLflow's REST API, for the web page's runs list (`SLIPWAY_EVAL_MLFLOW_URI`).

Why REST and not the `mlflow` package: the service's lock does not carry MLflow (31 packages, pandas
and pyarrow among them) for three read-only calls: an experiment by name, a run search, an artifact
download (MLflow's documented `/api/2.0/mlflow/...` endpoints and the server's `/get-artifact`).
A run here has the shape of a run folder's (eval_runs.py), read from what `eval/mlflow/tracking.py`
logs: params (dataset, target, model, chain), every metric with `<name>_ci_low`/`_ci_high`, and the
run's files as artifacts. Comparison runs (`kind=compare`) are not evaluation runs and are left out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.core.errors import NotFound

#: Run ids of MLflow runs on the page: the prefix keeps them apart from run folders' names.
PREFIX = "mlflow-"
#: Most runs read from one experiment (MLflow pages by 1,000 at most).
MAX_RUNS = 1000


class MlflowUnavailable(Exception):
    """The tracking server did not answer as MLflow does; the message says what to check."""


def _metrics(values: dict[str, float]) -> dict[str, dict[str, float | None]]:
    """The metrics logged with an interval (`<name>_ci_low`), as a run folder's summary has them."""
    return {
        name: {"value": value, "ci_low": values[f"{name}_ci_low"], "ci_high": values.get(f"{name}_ci_high")}
        for name, value in values.items()
        if f"{name}_ci_low" in values
    }


def run_of(raw: dict[str, Any]) -> dict[str, Any] | None:
    """One MLflow run as the page's run object (None for a comparison run)."""
    info, data = raw.get("info") or {}, raw.get("data") or {}
    params = {p["key"]: p["value"] for p in data.get("params") or []}
    if params.get("kind") == "compare":
        return None
    metrics = {m["key"]: m["value"] for m in data.get("metrics") or []}
    tags = {t["key"]: t["value"] for t in data.get("tags") or []}
    start = info.get("start_time")
    return {
        "id": PREFIX + str(info.get("run_id")),
        "object": "eval.run",
        "source": "mlflow",
        "name": info.get("run_name"),
        "dataset": params.get("dataset"),
        "dataset_sha256": params.get("dataset_sha256"),
        "target": params.get("target"),
        "model": params.get("model"),
        "chain": params.get("chain"),
        "started": datetime.fromtimestamp(int(start) / 1000, UTC).isoformat() if start else None,
        "n": int(metrics["n"]) if "n" in metrics else None,
        "errors": int(metrics["errors"]) if "errors" in metrics else None,
        "metrics": _metrics(metrics),
        "gate": tags.get("slipway.gate"),
        "has_report": True,
    }


class MlflowRuns:
    def __init__(self, uri: str, experiment: str, *, timeout_s: float = 10.0) -> None:
        self.uri = uri.rstrip("/")
        self.experiment = experiment
        self.timeout_s = timeout_s
        parts = urlsplit(self.uri)
        # What messages name: the server without any user:password@ the URI carries.
        self.shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.uri, timeout=self.timeout_s)

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise MlflowUnavailable(
                f"The MLflow server at {self.shown} did not answer ({type(exc).__name__}); "
                "check SLIPWAY_EVAL_MLFLOW_URI and that `mlflow server` runs there."
            ) from None

    async def list(self) -> list[dict[str, Any]]:
        """The experiment's evaluation runs, oldest first; [] when the experiment does not exist yet."""
        async with self._client() as client:
            found = await self._call(
                client, "GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": self.experiment}
            )
            if found.status_code == 404:
                return []
            if found.status_code != 200:
                raise MlflowUnavailable(
                    f"The MLflow server at {self.shown} answered {found.status_code} for the experiment."
                )
            experiment_id = found.json()["experiment"]["experiment_id"]
            body = {
                "experiment_ids": [experiment_id],
                "max_results": MAX_RUNS,
                "order_by": ["attributes.start_time ASC"],
            }
            searched = await self._call(client, "POST", "/api/2.0/mlflow/runs/search", json=body)
            if searched.status_code != 200:
                raise MlflowUnavailable(
                    f"The MLflow server at {self.shown} answered {searched.status_code} to a run search."
                )
        runs = [run_of(raw) for raw in searched.json().get("runs") or []]
        return [run for run in runs if run is not None]

    async def artifact(self, run_id: str, path: str) -> bytes:
        """A file the run logged (report.html, results.jsonl, summary.json); 404 when it has none."""
        async with self._client() as client:
            got = await self._call(client, "GET", "/get-artifact", params={"path": path, "run_uuid": run_id})
        if got.status_code != 200:
            raise NotFound(f"The MLflow run {run_id!r} has no {path}.", param="run_id", code="report_not_found")
        return got.content
