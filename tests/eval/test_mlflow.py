"""Evaluation runs in MLflow, read back from a real `mlflow server` (SQLite backend, a local artifact
folder, a free loopback port): params, metrics equal to summary.json, the case table, the artifacts,
the dataset input, a failed gate marking its run, and compare's run linked to both; and Slipway's
metrics as MLflow GenAI scorers agreeing with `python -m eval score` on the 60-case sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mlflow_server import MlflowServer
from tests.servers import ROOT

pytestmark = pytest.mark.slow

SAMPLE = ROOT / "eval" / "datasets" / "sample.jsonl"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def predictions(path: Path) -> Path:
    """The sample's cases answered imperfectly and deterministically: some exact, some cut, some wrong."""
    from eval import load_dataset

    with path.open("w") as fh:
        for i, case in enumerate(load_dataset(SAMPLE)):
            ref = case.reference[0]
            words = ref.split()
            answer = (
                ref if i % 3 == 0 else " ".join(words[: max(1, len(words) - 2)]) if i % 3 == 1 else "I am not sure."
            )
            fh.write(
                json.dumps({"id": case.id, "prompt": case.prompt_text, "prediction": answer, "reference": ref}) + "\n"
            )
    return path


def eval_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "eval", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def client(url: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url)


def artifact_names(mlflow_client: Any, run_id: str) -> set[str]:
    return {a.path for a in mlflow_client.list_artifacts(run_id)}


def test_score_run_and_compare_are_logged_and_read_back(mlflow_server: str, tmp_path: Path) -> None:
    preds = predictions(tmp_path / "preds.jsonl")
    score_dir = tmp_path / "scored"
    done = eval_cli(
        "score", str(preds), "--out", str(score_dir), "--mlflow-uri", mlflow_server,
        "--experiment", "slipway-test", "--fail-under", "bleu=99",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the gate failed...
    assert "gate failed" in done.stderr and "logged to MLflow" in done.stderr  # ...and the run was logged first
    summary = json.loads((score_dir / "summary.json").read_text())
    logged = json.loads((score_dir / "mlflow.json").read_text())
    c = client(mlflow_server)
    run = c.get_run(logged["run_id"])
    assert run.info.status == "FAILED", "a failed gate marks the run"
    assert run.data.tags["slipway.gate"] == "failed" and "bleu" in run.data.tags["slipway.gate_failures"]
    params = run.data.params
    assert params["kind"] == "score" and params["dataset"] == "preds.jsonl" and params["dataset_rows"] == "60"
    assert params["dataset_sha256"] == summary["dataset_sha256"]
    assert params["slipway_version"] and "git_commit" in params
    for name, m in summary["metrics"].items():
        assert run.data.metrics[name] == pytest.approx(m["value"])
        if "ci_low" in m:
            assert run.data.metrics[f"{name}_ci_low"] == pytest.approx(m["ci_low"])
            assert run.data.metrics[f"{name}_ci_high"] == pytest.approx(m["ci_high"])
    assert {"report.html", "results.jsonl", "summary.json", "cases.json"} <= artifact_names(c, run.info.run_id)
    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("slipway-test")  # load_table searches the current experiment
    table = mlflow.load_table("cases.json", run_ids=[run.info.run_id])
    assert len(table) == 60 and {"id", "prediction", "reference", "meteor"} <= set(table.columns)
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "preds.jsonl"
    assert dataset_input.dataset.digest == summary["dataset_sha256"][:32]

    # A second scoring (a better candidate: every answer exact) passes its gate, and compare links both.
    better = tmp_path / "better.jsonl"
    better.write_text(
        "".join(
            json.dumps({**json.loads(line), "prediction": json.loads(line)["reference"]}) + "\n"
            for line in preds.read_text().splitlines()
        )
    )
    done = eval_cli(
        "score", str(better), "--out", str(tmp_path / "b"), "--mlflow-uri", mlflow_server,
        "--experiment", "slipway-test", "--fail-under", "bleu=99",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_b = json.loads((tmp_path / "b" / "mlflow.json").read_text())["run_id"]
    assert c.get_run(run_b).info.status == "FINISHED"
    done = eval_cli(
        "compare", str(score_dir), str(tmp_path / "b"), "--out", str(tmp_path / "cmp"),
        "--mlflow-uri", mlflow_server, "--experiment", "slipway-test",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    compared = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    cmp_run = c.get_run(json.loads((tmp_path / "cmp" / "mlflow.json").read_text())["run_id"])
    assert cmp_run.data.tags["slipway.run_a"] == logged["run_id"]
    assert cmp_run.data.tags["slipway.run_b"] == run_b
    assert cmp_run.data.metrics["meteor_delta"] == pytest.approx(compared["metrics"]["meteor"]["delta"])
    assert cmp_run.data.metrics["meteor_p_value"] == pytest.approx(compared["metrics"]["meteor"]["p_value"])
    assert {"compare.json", "report.html"} <= artifact_names(c, cmp_run.info.run_id)


def test_a_local_store_keeps_its_artifacts_beside_it(tmp_path: Path) -> None:
    """`score --mlflow-uri sqlite:///<dir>/mlflow.db` run from another directory: the run's files go to
    <dir>/mlruns, and nothing is written where the command ran (MLflow's default is ./mlruns)."""
    from mlflow.tracking import MlflowClient

    store_dir, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    store_dir.mkdir()
    elsewhere.mkdir()
    preds = predictions(tmp_path / "preds.jsonl")
    uri = f"sqlite:///{store_dir}/mlflow.db"
    done = eval_cli("score", str(preds), "--out", str(tmp_path / "run"), "--mlflow-uri", uri, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    run_id = json.loads((tmp_path / "run" / "mlflow.json").read_text())["run_id"]
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.info.artifact_uri.startswith((store_dir / "mlruns").as_uri()), run.info.artifact_uri
    assert (store_dir / "mlruns").is_dir() and list(elsewhere.iterdir()) == []


def test_a_run_on_the_embedded_model_is_logged_with_its_parameters(mlflow_server: str, tmp_path: Path) -> None:
    done = eval_cli(
        "run", str(SAMPLE), "--target", "local", "--limit", "3", "--max-tokens", "16", "--seed", "7",
        "--out", str(tmp_path / "run"), "--mlflow-uri", mlflow_server, "--experiment", "slipway-test",
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = client(mlflow_server).get_run(json.loads((tmp_path / "run" / "mlflow.json").read_text())["run_id"])
    params = run.data.params
    assert params["kind"] == "run" and params["target"] == "local" and params["model"]
    assert (params["seed"], params["max_tokens"], params["temperature"]) == ("7", "16", "0.0")
    assert params["dataset"] == "sample.jsonl" and params["dataset_rows"] == "3"
    assert run.info.status == "FINISHED" and run.data.tags["slipway.gate"] == "passed"
    assert run.data.metrics["n"] == 3 and "latency_p50_s" in run.data.metrics


def test_mlflow_genai_evaluate_with_slipways_scorers_agrees_with_eval_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)  # MLflow writes each case's trace under ./mlruns: not in the checkout

    from eval import score
    from eval.mlflow import scorers

    preds = [json.loads(line) for line in predictions(tmp_path / "preds.jsonl").read_text().splitlines()]
    ours = score(preds)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("slipway-scorers")
    data = [
        {
            "inputs": {"question": p["prompt"]},
            "outputs": p["prediction"],
            "expectations": {"expected_response": p["reference"]},
        }
        for p in preds
    ]
    result = mlflow.genai.evaluate(data=data, scorers=scorers.ALL)
    for name in ("rouge1", "rouge2", "rougeL", "rougeLsum", "meteor"):
        assert result.metrics[f"{name}/mean"] == pytest.approx(ours.values[name], abs=1e-9), name
    for name in ("bleu", "chrf"):  # corpus scores: `corpus` sums the cases' n-gram counts as eval does
        assert result.metrics[f"{name}/corpus"] == pytest.approx(ours.values[name], abs=1e-9), name
        per_case = [row["metrics"][name] for row in ours.rows]
        assert result.metrics[f"{name}/mean"] == pytest.approx(sum(per_case) / len(per_case), abs=1e-9), name
        assert result.metrics[f"{name}/mean"] != pytest.approx(ours.values[name]), "corpus and mean differ here"
    # A second evaluation on a few of the cases aggregates its own cases only.
    half = score(preds[:8])
    again = mlflow.genai.evaluate(data=data[:8], scorers=[scorers.bleu, scorers.chrf])
    for name in ("bleu", "chrf"):
        assert again.metrics[f"{name}/corpus"] == pytest.approx(half.values[name], abs=1e-9), name
