"""Evaluation runs at `/runs` and `/api/eval`: two runs written by `python -m eval score` into the
folder a real Slipway is given (SLIPWAY_EVAL_RUNS_DIR), listed with their metrics and intervals, a
trend, a report download and a comparison that equals the harness's own (`eval.compare`), in headless
Chromium; the API refuses what is not a run. Screenshots go to test-artifacts/screenshots/."""

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
from tests.browser.test_web_page import SHOTS, axe_violations
from tests.servers import ROOT, SlipwayServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REFERENCES = [
    "Paris is the capital of France.",
    "Water boils at 100 degrees Celsius at sea level.",
    "The Pacific is the largest ocean.",
    "Mount Everest is the highest mountain.",
    "Light travels faster than sound.",
    "The heart pumps blood around the body.",
]
ANSWERS = {
    "a-baseline": ["It is Paris.", "At 90 degrees.", "The Atlantic.", "K2.", "Sound is faster.", "The lungs do."],
    "b-candidate": [
        "Paris is the capital of France.",
        "Water boils at 100 degrees Celsius.",
        "The Pacific is the largest ocean.",
        "Everest is the highest mountain.",
        "Light is faster than sound.",
        "The lungs do.",
    ],
}


def write_run(runs: Path, name: str, answers: list[str], references: list[str]) -> Path:
    (runs.parent / name).mkdir()
    predictions = runs.parent / name / "answers.jsonl"  # one dataset name for all: one trend
    predictions.write_text(
        "\n".join(
            json.dumps({"id": str(i), "prediction": p, "reference": r})
            for i, (p, r) in enumerate(zip(answers, references, strict=True))
        )
    )
    out = runs / name
    done = subprocess.run(
        [sys.executable, "-m", "eval", "score", str(predictions), "--out", str(out), "--resamples", "200"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "runs"
    root.mkdir()
    for name, answers in ANSWERS.items():
        write_run(root, name, answers, REFERENCES)
    # Not runs: a folder without summary.json, a hidden folder, a broken summary; and a run whose
    # references differ (it lists, but cannot be compared with the others).
    (root / "not-a-run").mkdir()
    (root / ".hidden").mkdir()
    (root / ".hidden" / "summary.json").write_text("{}")
    (root / "broken").mkdir()
    (root / "broken" / "summary.json").write_text("{not json")
    write_run(root, "z-other-refs", ANSWERS["a-baseline"], [r.upper() for r in REFERENCES])
    return root


@pytest.fixture(scope="module")
def server(runs: Path) -> Iterator[SlipwayServer]:
    with SlipwayServer(env={"SLIPWAY_EVAL_RUNS_DIR": str(runs)}) as s:
        yield s


def test_the_api_lists_runs_and_compares_them_as_the_harness_does(server: SlipwayServer, runs: Path) -> None:
    listed = httpx.get(server.url + "/api/eval/runs").json()
    assert listed["configured"] is True
    assert [r["id"] for r in listed["data"]] == ["a-baseline", "b-candidate", "z-other-refs"]
    summary = json.loads((runs / "b-candidate" / "summary.json").read_text())
    b = listed["data"][1]
    for name in ("bleu", "chrf", "meteor"):
        stored = summary["metrics"][name]
        assert b["metrics"][name] == {k: stored[k] for k in ("value", "ci_low", "ci_high")}
    assert b["n"] == 6 and b["has_report"] is True

    report = httpx.get(server.url + "/api/eval/runs/a-baseline/report")
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert "attachment" in report.headers["content-disposition"]

    diff = httpx.get(server.url + "/api/eval/compare", params={"a": "a-baseline", "b": "b-candidate"}).json()
    harness = compare(runs / "a-baseline", runs / "b-candidate")
    for name, values in harness["metrics"].items():
        assert diff["metrics"][name]["delta"] == pytest.approx(values["delta"])
        assert diff["metrics"][name]["p_value"] == pytest.approx(values["p_value"])
    assert diff["metrics"]["meteor"]["delta"] > 0, "B answers better"

    for path, code in [
        ("/api/eval/runs/no-such-run/report", 404),
        ("/api/eval/runs/..%2F..%2Fetc/report", 404),
        ("/api/eval/runs/not-a-run/report", 404),
        ("/api/eval/compare?a=a-baseline&b=nope", 404),
        ("/api/eval/compare?a=a-baseline&b=z-other-refs", 400),
        ("/api/eval/compare?a=a-baseline", 400),
    ]:
        r = httpx.get(server.url + path)
        assert r.status_code == code, (path, r.text)
        error = r.json()["error"]
        # A path that is no route of /api/eval falls to the Ollama API's catch-all, in Ollama's format.
        assert error if isinstance(error, str) else error["message"], r.text


def test_without_a_runs_folder_the_api_says_so() -> None:
    with SlipwayServer() as plain:
        listed = httpx.get(plain.url + "/api/eval/runs").json()
        assert listed == {"object": "list", "data": [], "configured": False, "mlflow": None}
        assert httpx.get(plain.url + "/api/eval/runs/x/report").status_code == 404


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as context:
        yield context


def test_the_runs_page_lists_trends_downloads_and_compares(
    chromium: Any, server: SlipwayServer, runs: Path, js_clients: Path
) -> None:
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "/runs")
        page.wait_for_selector("#runs-body tr")
        assert page.locator("#runs-body tr th").all_inner_texts() == ["a-baseline", "b-candidate", "z-other-refs"]
        meteor = json.loads((runs / "b-candidate" / "summary.json").read_text())["metrics"]["meteor"]
        cell = page.locator("#runs-body tr[data-id=b-candidate] td[data-metric=meteor]").inner_text()
        assert cell.startswith(f"{meteor['value']:.3f}") and f"[{meteor['ci_low']:.3f}, {meteor['ci_high']:.3f}]" in cell
        assert page.locator("#trend-metric").input_value() == "meteor"
        assert page.locator("#trend svg circle").count() == 3, "one point per run of the dataset"

        with page.expect_download() as download:
            page.click("#runs-body tr[data-id=a-baseline] button")
        saved = Path(download.value.path())
        assert download.value.suggested_filename == "a-baseline-report.html"
        assert "<html" in saved.read_text().lower()

        page.select_option("#run-a", "a-baseline")
        page.select_option("#run-b", "b-candidate")
        page.click("#compare-form button[type=submit]")
        page.wait_for_selector("#comparison:not([hidden]) tr[data-metric=meteor]")
        delta = compare(runs / "a-baseline", runs / "b-candidate")["metrics"]["meteor"]["delta"]
        shown = page.locator("#comparison-body tr[data-metric=meteor] td").nth(2).inner_text()
        assert shown == f"+{delta:.3f}"
        assert page.locator("#cases li").count() == 6

        page.select_option("#run-b", "z-other-refs")  # not comparable: said, not a crash
        page.click("#compare-form button[type=submit]")
        page.wait_for_selector("#notice:not([hidden])")
        assert "cannot be compared" in page.locator("#notice").inner_text()
        assert page.locator("#comparison").is_hidden(), "the earlier comparison is not left beside the error"

        SHOTS.mkdir(parents=True, exist_ok=True)
        for width, height in [(1280, 800), (390, 844)]:
            page.set_viewport_size({"width": width, "height": height})
            path = SHOTS / f"runs-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 10_000
        assert not errors, errors
    finally:
        page.close()

    audit = chromium.new_page()
    try:
        chromium.new_cdp_session(audit).send("Page.setBypassCSP", {"enabled": True})
        audit.goto(server.url + "/runs")
        audit.wait_for_selector("#runs-body tr")
        assert axe_violations(audit, js_clients / "node_modules" / "axe-core" / "axe.min.js") == []
    finally:
        audit.close()
