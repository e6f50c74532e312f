"""Evaluation runs logged to a real MLflow tracking server (`mlflow server`, SQLite backend, local
artifacts, loopback) by `python -m eval score --mlflow-uri`, listed by a real Slipway given that server
(SLIPWAY_EVAL_MLFLOW_URI) beside its runs folder: metrics and intervals as the runs' summary.json, the
gate a run failed, comparison runs left out, the report downloaded from MLflow, two MLflow runs
compared as the harness compares their folders, the page in Chromium; and an MLflow server that does
not answer is reported without its credentials while the folder's runs are still listed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eval.compare import compare
from tests.browser.chromium import browser
from tests.browser.test_runs_page import ANSWERS, REFERENCES, write_run
from tests.mlflow_server import MlflowServer
from tests.servers import ROOT, SlipwayServer, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def eval_cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "eval", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: a gate failed, which one run does on purpose


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two runs scored and logged to MLflow (the candidate with a gate it misses), their compare
    logged too, and one run only in the folder."""
    tmp = tmp_path_factory.mktemp("mlflow-runs")
    local, folder = tmp / "local", tmp / "folder"
    local.mkdir()
    folder.mkdir()
    with MlflowServer(tmp / "server") as url:
        dirs = {}
        for name, answers in ANSWERS.items():
            preds = tmp / f"{name}.jsonl"
            preds.write_text(
                "\n".join(
                    json.dumps({"id": str(i), "prediction": p, "reference": r})
                    for i, (p, r) in enumerate(zip(answers, REFERENCES, strict=True))
                )
            )
            gate = ["--fail-under", "bleu=99"] if name == "b-candidate" else []
            eval_cli("score", str(preds), "--out", str(local / name), "--resamples", "200", "--mlflow-uri", url, *gate)
            dirs[name] = local / name
        eval_cli("compare", str(dirs["a-baseline"]), str(dirs["b-candidate"]), "--mlflow-uri", url)
        write_run(folder, "folder-run", ANSWERS["a-baseline"], REFERENCES)
        env = {"SLIPWAY_EVAL_RUNS_DIR": str(folder), "SLIPWAY_EVAL_MLFLOW_URI": url}
        with SlipwayServer(env=env) as server:
            yield {"server": server, "dirs": dirs, "url": url}


def mlflow_id(run_dir: Path) -> str:
    return "mlflow-" + json.loads((run_dir / "mlflow.json").read_text())["run_id"]


def test_mlflow_runs_are_listed_beside_the_folders(logged: dict[str, Any]) -> None:
    listed = httpx.get(logged["server"].url + "/api/eval/runs", timeout=30).json()
    assert listed["mlflow"] == {"experiment": "slipway-eval", "error": None}
    by_id = {r["id"]: r for r in listed["data"]}
    assert by_id["folder-run"]["source"] == "folder"
    for name, run_dir in logged["dirs"].items():
        run = by_id[mlflow_id(run_dir)]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert run["source"] == "mlflow" and run["n"] == 6 and run["dataset"] == summary["dataset"]
        for metric in ("bleu", "chrf", "meteor", "rougeL"):
            stored = summary["metrics"][metric]
            assert run["metrics"][metric] == pytest.approx({k: stored[k] for k in ("value", "ci_low", "ci_high")})
        assert run["gate"] == ("failed" if name == "b-candidate" else "passed")
    assert len(listed["data"]) == 3, "the comparison run is not an evaluation run"


def test_an_mlflow_runs_report_and_a_comparison_of_two(logged: dict[str, Any]) -> None:
    url, dirs = logged["server"].url, logged["dirs"]
    a, b = mlflow_id(dirs["a-baseline"]), mlflow_id(dirs["b-candidate"])
    report = httpx.get(f"{url}/api/eval/runs/{a}/report", timeout=30)
    assert report.status_code == 200 and report.content == (dirs["a-baseline"] / "report.html").read_bytes()
    assert "attachment" in report.headers["content-disposition"]
    compared = httpx.get(f"{url}/api/eval/compare", params={"a": a, "b": b}, timeout=60)
    assert compared.status_code == 200, compared.text
    expected = compare(dirs["a-baseline"], dirs["b-candidate"])
    assert compared.json()["metrics"] == expected["metrics"]
    mixed = httpx.get(f"{url}/api/eval/compare", params={"a": "folder-run", "b": b}, timeout=60)
    assert mixed.status_code == 200, "a folder run and an MLflow run compare too"
    missing = httpx.get(f"{url}/api/eval/runs/mlflow-{'0' * 32}/report", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "report_not_found"


def test_the_runs_page_shows_mlflow_runs_and_compares_them(logged: dict[str, Any]) -> None:
    url, dirs = logged["server"].url, logged["dirs"]
    with browser() as context:
        page = context.new_page()
        page.goto(url + "/runs")
        page.wait_for_selector("#runs-body tr >> nth=2")
        sources = page.locator("#runs-body tr td:nth-child(2)").all_inner_texts()
        assert sorted(sources) == ["MLflow", "MLflow (gate failed)", "folder"]
        page.select_option("#run-a", mlflow_id(dirs["a-baseline"]))
        page.select_option("#run-b", mlflow_id(dirs["b-candidate"]))
        page.click("#compare-form button[type=submit]")
        page.wait_for_selector("#comparison:not([hidden])")
        assert page.locator("#comparison-body tr[data-metric='meteor']").count() == 1
        assert page.locator("#notice").is_hidden()


def test_an_mlflow_server_away_is_reported_without_its_credentials(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    write_run(folder, "still-listed", ANSWERS["a-baseline"], REFERENCES)
    away = f"http://reader:s3cret-token@127.0.0.1:{free_port()}"
    with SlipwayServer(env={"SLIPWAY_EVAL_RUNS_DIR": str(folder), "SLIPWAY_EVAL_MLFLOW_URI": away}) as server:
        r = httpx.get(server.url + "/api/eval/runs", timeout=60)
    assert r.status_code == 200
    body = r.json()
    assert [run["id"] for run in body["data"]] == ["still-listed"]
    assert "did not answer" in body["mlflow"]["error"] and "SLIPWAY_EVAL_MLFLOW_URI" in body["mlflow"]["error"]
    assert "s3cret-token" not in r.text and "reader" not in r.text
