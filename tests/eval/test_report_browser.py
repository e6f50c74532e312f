"""The evaluation report opens in real headless Chromium without errors and shows its content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.runner import score
from tests.browser.chromium import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_report_renders_without_errors(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    rows = [
        {"id": "1", "prediction": "Paris is the capital.", "reference": "The capital of France is Paris."},
        {"id": "2", "prediction": "<script>window.pwned=1</script> blue", "reference": "The sky is blue."},
    ]
    preds.write_text("\n".join(json.dumps(r) for r in rows))
    score(preds, out=tmp_path / "run", resamples=50)
    errors: list[str] = []
    with browser() as ctx:
        page = ctx.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "run" / "report.html").as_uri())
        assert page.locator("h1").inner_text().startswith("Evaluation")
        assert page.locator("img").count() == 7  # one distribution per metric, embedded
        assert all(page.evaluate(f"document.images[{i}].naturalWidth") > 0 for i in range(7))
        assert page.evaluate("window.pwned === undefined"), "a prediction's HTML must not run"
        assert "<script>window.pwned=1</script> blue" in page.content().replace("&lt;", "<").replace("&gt;", ">")
    assert errors == []
