"""The run and comparison reports open in real headless Chromium without errors, fetch nothing,
show their content, and never run markup that came from a prediction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.runner import score
from tests.browser.chromium import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_A = [
    {"id": "1", "prediction": "Paris is the capital.", "reference": "The capital of France is Paris."},
    {"id": "2", "prediction": "<script>window.pwned=1</script> blue", "reference": ["The sky is blue.", "Blue."]},
    {"id": "3", "prediction": "東京は日本の首都です", "reference": "東京は日本の首都です"},
    {"id": "4", "prediction": "Water boils at 90 degrees.", "reference": "Water boils at 100 degrees Celsius."},
]


def write_run(tmp_path: Path, name: str, rows: list[dict]) -> Path:
    preds = tmp_path / f"{name}.jsonl"
    preds.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    score(preds, out=tmp_path / name, resamples=50)
    return tmp_path / name


def open_report(path: Path) -> tuple[dict, list[str]]:
    """Load the page; return facts read from it and every console error, page error and non-local request."""
    problems: list[str] = []
    with browser() as ctx:
        page = ctx.new_page()
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on(
            "request",
            lambda r: None if r.url.startswith(("file:", "data:")) else problems.append(f"request: {r.url}"),
        )
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        facts = page.evaluate(
            """() => ({
                h1: document.querySelector('h1').innerText,
                images: [...document.images].map(i => [i.complete, i.naturalWidth, i.src.slice(0, 22)]),
                scripts: document.scripts.length,
                pwned: window.pwned === undefined ? null : window.pwned,
                text: document.body.innerText,
            })"""
        )
    return facts, problems


def test_run_report_renders_without_errors(tmp_path: Path) -> None:
    run = write_run(tmp_path, "a", RUN_A)
    facts, problems = open_report(run / "report.html")
    assert problems == []
    assert facts["h1"].startswith("Evaluation")
    assert len(facts["images"]) >= 8  # forest plot + one distribution per metric, all embedded
    assert all(done and width > 0 and src == "data:image/png;base64," for done, width, src in facts["images"])
    assert facts["scripts"] == 0 and facts["pwned"] is None  # a prediction's markup is text, not code
    assert "<script>window.pwned=1</script> blue" in facts["text"]
    assert "東京は日本の首都です" in facts["text"] and "Worst cases" in facts["text"]


def test_compare_report_renders_without_errors(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", RUN_A)
    b = write_run(
        tmp_path,
        "b",
        [{**r, "prediction": r["reference"] if isinstance(r["reference"], str) else "Blue."} for r in RUN_A],
    )
    from eval import compare
    from eval.report import write_report

    out = tmp_path / "ab"
    out.mkdir()
    (out / "compare.json").write_text(json.dumps(compare(a, b, resamples=50)))
    facts, problems = open_report(write_report(out))
    assert problems == []
    assert facts["h1"].startswith("Comparison")
    assert len(facts["images"]) >= 3 and all(width > 0 for _, width, _ in facts["images"])
    assert "METEOR" in facts["text"] and "Every case, B against A" in facts["text"]
    assert facts["pwned"] is None  # the report's own script runs; a prediction's markup stays text


def test_compare_report_lists_every_case_by_regression_and_filters(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", RUN_A)
    # B: case 1 exact (better), case 4 worse, case 2 unchanged, case 3 worse (now wrong).
    changed = {"1": "The capital of France is Paris.", "3": "Osaka.", "4": "Water is wet."}
    b = write_run(tmp_path, "b", [{**r, "prediction": changed.get(r["id"], r["prediction"])} for r in RUN_A])
    from eval import compare
    from eval.report import write_report

    result = compare(a, b, resamples=50)
    out = tmp_path / "ab"
    out.mkdir()
    (out / "compare.json").write_text(json.dumps(result))
    deltas = {c["id"]: c["deltas"]["meteor"] for c in result["cases"]}
    expected_order = sorted(deltas, key=lambda i: deltas[i])
    assert deltas["1"] > 0 and deltas["3"] < 0 and deltas["4"] < 0 and deltas["2"] == 0
    problems: list[str] = []
    with browser() as ctx:
        page = ctx.new_page()
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.goto(write_report(out).as_uri())
        page.wait_for_load_state("load")

        def visible_ids() -> list[str]:
            return page.evaluate(
                "() => [...document.querySelectorAll('#cases tbody tr')].filter(r => !r.hidden)"
                ".map(r => r.cells[0].innerText)"
            )

        assert visible_ids() == expected_order, "largest regression first"
        page.select_option("#case-show", "worse")
        assert sorted(visible_ids()) == ["3", "4"]
        page.select_option("#case-show", "better")
        assert visible_ids() == ["1"]
        page.select_option("#case-show", "all")
        page.fill("#case-filter", "boils")  # the prompt-less case 4's reference and answers
        assert visible_ids() == ["4"]
        assert page.inner_text("#case-count") == "1 of 4 cases shown"
        page.fill("#case-filter", "")
        page.select_option("#case-sort", "dbleu")
        bleu = {c["id"]: c["deltas"]["bleu"] for c in result["cases"]}
        shown = visible_ids()
        assert [bleu[i] for i in shown] == sorted(bleu.values())
    assert problems == []
