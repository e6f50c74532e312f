"""One MLflow run per evaluation: what was run (params), how it scored (metrics with their interval
bounds), each case (a table), the files (artifacts), the dataset (an input), and whether a gate failed.

Why read back from the run directory: `run`, `score` and a later `python -m eval log` all leave the
same three files (summary.json, results.jsonl, report.html), so one function logs all of them, and
what MLflow holds is exactly what the directory holds. The run's id is written next to them
(`mlflow.json`), which is how `compare` links its run to the two it compares.

Offline and local by default: with no URI and no MLFLOW_TRACKING_URI, runs go to a SQLite store in
the working directory (`sqlite:///mlflow.db`, what `mlflow ui` opens), never to a network.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import subprocess
from pathlib import Path
from typing import Any

DEFAULT_EXPERIMENT = "slipway-eval"
LOCAL_STORE = "sqlite:///mlflow.db"
RUN_FILE = "mlflow.json"


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise RuntimeError("--mlflow needs MLflow: pip install -e '.[mlflow]' (or pip install mlflow)") from None
    return mlflow


def _use(mlflow: Any, uri: str, experiment: str) -> None:
    """Point MLflow at `uri` and `experiment`. An experiment new to a local SQLite store keeps its
    artifacts beside the database (`<dir>/mlruns`), not in whatever directory the command ran from:
    MLflow's default for such a store is `./mlruns`, which scattered runs over working directories."""
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(experiment) is None:
        artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
        with contextlib.suppress(Exception):  # created meanwhile by another process: use that one
            mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)


def tracking_uri(uri: str | None) -> str:
    """The URI given, else MLFLOW_TRACKING_URI (MLflow's own variable, read by MLflow), else the local store."""
    _mlflow()
    if uri:
        return uri
    from mlflow.environment_variables import MLFLOW_TRACKING_URI

    return MLFLOW_TRACKING_URI.get() or LOCAL_STORE


def git_commit() -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        if done.returncode == 0:
            return done.stdout.strip() or None
    return None


def slipway_version() -> str:
    try:
        return importlib.metadata.version("slipway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_params(summary: dict[str, Any], kind: str) -> dict[str, Any]:
    params = summary.get("params") or {}
    out = {
        "kind": kind,
        "target": summary.get("target"),
        "model": summary.get("model"),
        "chain": summary.get("chain"),
        "temperature": params.get("temperature"),
        "seed": params.get("seed"),
        "max_tokens": params.get("max_tokens"),
        "dataset": summary.get("dataset"),
        "dataset_rows": summary.get("n"),
        "dataset_sha256": summary.get("dataset_sha256"),
        "slipway_version": slipway_version(),
        "git_commit": git_commit(),
    }
    return {k: v for k, v in out.items() if v is not None}


def run_metrics(summary: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, m in summary.get("metrics", {}).items():
        out[name] = float(m["value"])
        for bound in ("ci_low", "ci_high"):
            if bound in m:
                out[f"{name}_{bound}"] = float(m[bound])
    for name in ("n", "errors", "cached", "duration_s"):
        if isinstance(summary.get(name), (int, float)):
            out[name] = float(summary[name])
    latency = summary.get("latency_s") or {}
    for key in ("p50", "p95", "mean"):
        if latency.get(key) is not None:
            out[f"latency_{key}_s"] = float(latency[key])
    for key, value in (summary.get("usage") or {}).items():
        if value is not None:
            out[key] = float(value)
    return out


def case_table(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """results.jsonl as columns (what `mlflow.log_table` shows as a table in the run's Evaluation tab)."""
    names = sorted({k for r in rows for k in (r.get("metrics") or {})})
    table: dict[str, list[Any]] = {"id": [], "prompt": [], "reference": [], "prediction": [], "error": []}
    table.update({name: [] for name in names})
    for r in rows:
        table["id"].append(r["id"])
        table["prompt"].append(r.get("prompt", ""))
        table["reference"].append((r.get("references") or [""])[0])
        table["prediction"].append(r.get("prediction", ""))
        table["error"].append(r.get("error") or "")
        for name in names:
            table[name].append((r.get("metrics") or {}).get(name))
    return table


def log_run(
    run_dir: str | Path,
    *,
    kind: str = "run",
    uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    failed_gates: list[str] | None = None,
    dataset_path: str | Path | None = None,
) -> str:
    """Log a run directory as one MLflow run; returns its id (also written to `mlflow.json` there)."""
    mlflow = _mlflow()
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    target_uri = tracking_uri(uri)
    _use(mlflow, target_uri, experiment)
    name = f"{kind}: {summary.get('model') or summary.get('target')} on {summary.get('dataset') or 'predictions'}"
    active = mlflow.start_run(run_name=name)
    status = "FAILED"  # unless everything below is logged and every gate passed
    try:
        mlflow.log_params(run_params(summary, kind))
        mlflow.log_metrics(run_metrics(summary))
        mlflow.log_table(data=case_table(rows), artifact_file="cases.json")
        for artifact in ("report.html", "results.jsonl", "summary.json"):
            if (run_dir / artifact).is_file():
                mlflow.log_artifact(str(run_dir / artifact))
        mlflow.log_input(_dataset(mlflow, rows, summary, dataset_path), context="evaluation")
        tags = {"slipway.kind": kind, "slipway.gate": "failed" if failed_gates else "passed"}
        if failed_gates:
            tags["slipway.gate_failures"] = "; ".join(failed_gates)
        mlflow.set_tags(tags)
        status = "FAILED" if failed_gates else "FINISHED"
    finally:
        mlflow.end_run(status=status)
    run_id: str = active.info.run_id
    _remember(run_dir, target_uri, run_id, active.info.experiment_id)
    return run_id


def log_result(
    scored: Any,
    *,
    out: str | Path | None = None,
    kind: str = "run",
    uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    dataset_path: str | Path | None = None,
) -> str:
    """Log what `eval.run`/`eval.score` returned; without its directory (`out`), its files are written
    to a temporary one first, so MLflow keeps the same artifacts either way."""
    import tempfile

    from eval.runner import write_outputs

    with tempfile.TemporaryDirectory(prefix="slipway-eval-") as tmp:
        run_dir = Path(out) if out is not None else Path(tmp)
        if out is None:
            write_outputs(run_dir, scored.rows, scored.summary)
        return log_run(run_dir, kind=kind, uri=uri, experiment=experiment, dataset_path=dataset_path)


def _dataset(mlflow: Any, rows: list[dict[str, Any]], summary: dict[str, Any], path: str | Path | None) -> Any:
    """The cases as an MLflow dataset input: its name, where it came from, and its digest (the sha256)."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "prompt": [r.get("prompt", "") for r in rows],
            "reference": [json.dumps(r.get("references") or [], ensure_ascii=False) for r in rows],
        }
    )
    sha = summary.get("dataset_sha256")
    return mlflow.data.from_pandas(
        frame,
        source=str(Path(path).resolve()) if path else None,
        name=summary.get("dataset") or "predictions",
        targets="reference",
        digest=sha[:32] if sha else None,  # the file's own digest, not pandas' hash of the frame
    )


def _remember(run_dir: Path, uri: str, run_id: str, experiment_id: str) -> None:
    (run_dir / RUN_FILE).write_text(
        json.dumps({"tracking_uri": uri, "run_id": run_id, "experiment_id": experiment_id}, indent=2)
    )


def logged_run(run_dir: str | Path) -> dict[str, str] | None:
    path = Path(run_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def log_compare(
    result: dict[str, Any],
    dir_a: str | Path,
    dir_b: str | Path,
    *,
    uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    out: str | Path | None = None,
) -> str:
    """One run for a comparison: the paired test's figures per metric, linked to both runs (their ids as
    tags and params when they were logged; the directories otherwise)."""
    mlflow = _mlflow()
    target_uri = tracking_uri(uri)
    _use(mlflow, target_uri, experiment)
    runs = {side: logged_run(d) for side, d in (("a", dir_a), ("b", dir_b))}
    with mlflow.start_run(run_name=f"compare: {Path(dir_b).name} against {Path(dir_a).name}") as active:
        params: dict[str, Any] = {"kind": "compare", "shared_cases": result["n"], "git_commit": git_commit()}
        tags = {"slipway.kind": "compare"}
        for side, d in (("a", dir_a), ("b", dir_b)):
            params[f"run_{side}_dir"] = str(Path(d).resolve())
            logged = runs[side]
            if logged:
                params[f"run_{side}"] = logged["run_id"]
                tags[f"slipway.run_{side}"] = logged["run_id"]
        mlflow.log_params({k: v for k, v in params.items() if v is not None})
        metrics: dict[str, float] = {}
        for name, m in result["metrics"].items():
            for key in ("a", "b", "delta", "ci_low", "ci_high", "p_value", "wins", "losses", "ties"):
                if m.get(key) is not None:
                    metrics[f"{name}_{key}"] = float(m[key])
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        if out is not None:
            for artifact in ("compare.json", "report.html"):
                if (Path(out) / artifact).is_file():
                    mlflow.log_artifact(str(Path(out) / artifact))
        run_id: str = active.info.run_id
    if out is not None:
        _remember(Path(out), target_uri, run_id, active.info.experiment_id)
    return run_id
