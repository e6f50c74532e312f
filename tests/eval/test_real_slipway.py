"""`python -m eval run` against a real Slipway (uvicorn + the packaged model), chat and a chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, SlipwayServer

pytestmark = pytest.mark.slow
SAMPLE = ROOT / "eval" / "datasets" / "sample.jsonl"


def run_eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", "run", *args, "--no-cache", "--max-tokens", "48", "--resamples", "50"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


def test_chat_and_chain_through_a_running_slipway(server: SlipwayServer, tmp_path: Path) -> None:
    chat = run_eval(str(SAMPLE), "--target", server.url, "--limit", "3", "--out", str(tmp_path / "chat"))
    assert chat.returncode == 0, chat.stderr
    summary = json.loads((tmp_path / "chat/summary.json").read_text())
    assert summary["n"] == 3 and summary["errors"] == 0 and summary["model"] == "smollm2"
    assert summary["usage"]["completion_tokens"] > 0 and summary["latency_s"]["max"] > 0
    rows = [json.loads(x) for x in (tmp_path / "chat/results.jsonl").read_text().splitlines()]
    assert all(r["prediction"].strip() and r["usage"]["prompt_tokens"] > 0 for r in rows)

    summaries = tmp_path / "sum.jsonl"
    picked = [line for line in SAMPLE.read_text().splitlines() if '"sum-0' in line][:2]
    summaries.write_text("".join(line + "\n" for line in picked))
    chain = run_eval(str(summaries), "--target", server.url, "--chain", "summarize", "--out", str(tmp_path / "chain"))
    assert chain.returncode == 0, chain.stderr
    rows = [json.loads(x) for x in (tmp_path / "chain/results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["error"] is None and r["prediction"].strip() for r in rows)
    assert all(r["usage"]["completion_tokens"] > 0 for r in rows)


def job_command() -> list[str]:
    """The Container Apps Job's command, read from its Bicep (infra/modules/evaljob.bicep)."""
    from tests.deploy.test_bicep import INFRA, parse

    job = parse(INFRA / "modules" / "evaljob.bicep")["resources"]["job"]["config"]
    [container] = job["properties"]["template"]["containers"]
    return list(container["command"])


def test_the_scheduled_evaluation_runs_as_the_job_runs_it(tmp_path: Path) -> None:
    """The Job's exact command, configured by environment as the Job configures it, against a running
    keyed Slipway: a missed gate fails the run (exit 1) and marks it in MLflow; a met one passes."""
    import os

    from mlflow.tracking import MlflowClient

    command = job_command()
    assert command == ["python", "-m", "eval", "scheduled"]
    key = "sk-test-scheduled-eval-0123456789"
    store = f"sqlite:///{tmp_path}/mlflow.db"
    with SlipwayServer(env={"SLIPWAY_API_KEYS": key}) as keyed:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "EVAL_", "MLFLOW_"))}
        env = {
            **base,
            "PYTHONPATH": str(ROOT),
            "SLIPWAY_URL": keyed.url,
            "SLIPWAY_API_KEY": key,
            "EVAL_LIMIT": "2",
            "MLFLOW_TRACKING_URI": store,
        }

        def job(**extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, *command[1:]], env={**env, **extra}, cwd=tmp_path,
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip

        missed = job(EVAL_FAIL_UNDER="meteor=0.99", EVAL_OUT=str(tmp_path / "missed"))
        assert missed.returncode == 1, missed.stderr
        assert "gate failed" in missed.stderr and "logged to MLflow" in missed.stderr
        met = job(EVAL_FAIL_UNDER="meteor=0", EVAL_OUT=str(tmp_path / "met"))
        assert met.returncode == 0, met.stderr
        keyless = job(SLIPWAY_API_KEY="", EVAL_OUT=str(tmp_path / "keyless"))
        assert keyless.returncode == 2 and "SLIPWAY_API_KEY" in " ".join(keyless.stderr.split())
    client = MlflowClient(store)
    runs = {
        json.loads((tmp_path / name / "mlflow.json").read_text())["run_id"]: name for name in ("missed", "met")
    }
    statuses = {runs[r]: client.get_run(r).info.status for r in runs}
    assert statuses == {"missed": "FAILED", "met": "FINISHED"}
    experiment = client.get_experiment(client.get_run(next(iter(runs))).info.experiment_id)
    assert experiment.name == "slipway-continuous"
    assert client.get_run(next(iter(runs))).data.params["target"] == keyed.url
