"""The CLI: gate exit codes 0/1/2, bad data named by file and line, outputs written, compare, report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval import load_dataset
from eval.datasets import DatasetError

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *args], capture_output=True, text=True, timeout=600, cwd=cwd or ROOT
    )


def write_preds(path: Path, good: bool) -> Path:
    rows = [
        {
            "id": "1",
            "prediction": "The capital of France is Paris." if good else "bananas",
            "reference": "The capital of France is Paris.",
        },
        {
            "id": "2",
            "prediction": "Water boils at 100 degrees." if good else "no idea",
            "reference": ["Water boils at 100 degrees Celsius."],
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_sample_dataset_is_valid_and_large_enough() -> None:
    cases = load_dataset(ROOT / "eval/datasets/sample.jsonl")
    assert len(cases) >= 50
    assert {c.metadata["task"] for c in cases} == {"factual", "summarization"}


def test_score_writes_three_files_and_gate_passes(tmp_path: Path) -> None:
    out = cli(
        "score",
        str(write_preds(tmp_path / "p.jsonl", True)),
        "--out",
        str(tmp_path / "o"),
        "--fail-under",
        "bleu=20,meteor=0.3",
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "o/summary.json").read_text())
    assert set(summary["metrics"]) >= {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "meteor"}
    assert {"value", "ci_low", "ci_high"} <= set(summary["metrics"]["bleu"])
    assert summary["n"] == 2
    rows = [json.loads(x) for x in (tmp_path / "o/results.jsonl").read_text().splitlines()]
    assert rows[0]["metrics"]["exact_match"] == 1.0
    assert "<html" in (tmp_path / "o/report.html").read_text()


def test_gate_failure_exits_1_and_names_the_metric(tmp_path: Path) -> None:
    out = cli(
        "score",
        str(write_preds(tmp_path / "p.jsonl", False)),
        "--out",
        str(tmp_path / "o"),
        "--fail-under",
        "bleu=20,meteor=0.3",
    )
    assert out.returncode == 1
    assert "bleu" in out.stderr and "meteor" in out.stderr


@pytest.mark.parametrize("gate", ["bleu", "bleu=x", "nonsense=3"])
def test_bad_gate_is_usage_error(tmp_path: Path, gate: str) -> None:
    out = cli("score", str(write_preds(tmp_path / "p.jsonl", True)), "--out", str(tmp_path / "o"), "--fail-under", gate)
    assert out.returncode == 2


def test_eta_comes_from_the_runs_average_pace() -> None:
    from rich.progress import Progress

    from eval.__main__ import AverageEta

    with Progress(disable=True) as progress:
        task_id = progress.add_task("cases", total=10)
        task = progress.tasks[0]
        assert AverageEta().render(task).plain == "ETA -:--:--"
        progress.advance(task_id, 4)
        task.start_time -= 40  # 4 cases in ~40 s: 6 left take ~60 s, whatever the last 30 s looked like
        assert AverageEta().render(task).plain in {"ETA 0:01:00", "ETA 0:01:01"}


def test_a_gate_off_the_metrics_scale_says_the_scale(tmp_path: Path) -> None:
    preds = str(write_preds(tmp_path / "p.jsonl", True))
    out = cli("score", preds, "--out", str(tmp_path / "o"), "--fail-under", "meteor=50")
    assert out.returncode == 2
    assert "METEOR is on 0-1, got 50; did you mean 0.5?" in out.stderr.replace("\n", " ")
    out = cli("score", preds, "--out", str(tmp_path / "o"), "--fail-under", "bleu=150")
    assert out.returncode == 2 and "BLEU is on 0-100" in out.stderr
    assert cli("score", preds, "--out", str(tmp_path / "o"), "--fail-under", "bleu=50").returncode == 0


def test_the_summary_says_what_each_number_means_and_where_the_report_is(tmp_path: Path) -> None:
    out = cli("score", str(write_preds(tmp_path / "p.jsonl", True)), "--out", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "0-100, higher better" in text and "0-1, higher better" in text
    assert f"report: {tmp_path / 'o' / 'report.html'}" in " ".join(out.stderr.split())


def test_compare_warns_when_the_runs_differ_in_more_than_the_change(tmp_path: Path) -> None:
    for name, good in (("a", False), ("b", True)):
        assert (
            cli("score", str(write_preds(tmp_path / f"{name}.jsonl", good)), "--out", str(tmp_path / name)).returncode
            == 0
        )
    summary = json.loads((tmp_path / "b/summary.json").read_text())
    summary.update(model="other-model", params={"temperature": 0.7})
    (tmp_path / "b/summary.json").write_text(json.dumps(summary))
    out = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "ab"))
    assert out.returncode == 0, out.stderr
    said = " ".join(out.stderr.split())
    assert "A and B differ" in said and "model: None -> other-model" in said and "temperature: None -> 0.7" in said
    assert "dataset_sha256" in said  # scored from two different files
    assert "A and B also differ in" in (tmp_path / "ab/report.html").read_text()


def test_bad_dataset_line_named_and_nothing_runs(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "prompt": "hi", "reference": "hello"}\n{"id": "b", "prompt": "x"}\nnot json\n')
    with pytest.raises(DatasetError) as info:
        load_dataset(data)
    assert f"{data}:2: reference" in str(info.value) and f"{data}:3: invalid JSON" in str(info.value)
    out = cli("run", str(data), "--target", "local", "--out", str(tmp_path / "o"))
    assert out.returncode == 2
    assert "d.jsonl:2" in out.stderr.replace("\n", "")
    assert not (tmp_path / "o").exists()


def test_csv_dataset(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("prompt,reference\nWhat is 2+2?,4\n")
    assert load_dataset(path)[0].reference == ["4"]


@pytest.mark.slow
def test_run_local_then_rerun_from_cache_then_compare(tmp_path: Path) -> None:
    args = [
        "run",
        "eval/datasets/sample.jsonl",
        "--target",
        "local",
        "--limit",
        "4",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    first = cli(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert "--concurrency 4 lowered to 1" in " ".join(first.stderr.split())  # the embedded model takes turns
    for name in ("results.jsonl", "summary.json", "report.html"):
        assert (tmp_path / "a" / name).is_file()
    rows = [json.loads(x) for x in (tmp_path / "a/results.jsonl").read_text().splitlines()]
    assert all(r["prediction"] and r["error"] is None and not r["cached"] for r in rows)
    second = cli(*args, "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    rows_b = [json.loads(x) for x in (tmp_path / "b/results.jsonl").read_text().splitlines()]
    assert all(r["cached"] for r in rows_b)
    assert [r["prediction"] for r in rows_b] == [r["prediction"] for r in rows]
    cmp = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c"))
    assert cmp.returncode == 0, cmp.stderr
    result = json.loads((tmp_path / "c/compare.json").read_text())
    assert result["n"] == 4 and result["metrics"]["meteor"]["delta"] == 0
    assert cli("report", str(tmp_path / "a")).returncode == 0


@pytest.mark.slow
def test_failed_generations_become_case_errors(tmp_path: Path) -> None:
    out = cli(
        "run",
        "eval/datasets/sample.jsonl",
        "--target",
        "openai:http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--limit",
        "3",
        "--no-cache",
        "--out",
        str(tmp_path / "o"),
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "o/summary.json").read_text())
    assert summary["errors"] == 3 and summary["n"] == 3


@pytest.mark.slow
def test_chain_target_uses_the_served_chain(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    text = "The library will open until midnight on weekdays during exam season. Extra rooms can be booked online."
    data.write_text(
        json.dumps(
            {
                "id": "s1",
                "prompt": "ignored",
                "input": {"text": text, "sentences": 1},
                "reference": "The library opens until midnight during exams.",
            }
        )
        + "\n"
    )
    out = cli("run", str(data), "--target", "local", "--chain", "summarize", "--no-cache", "--out", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    row = json.loads((tmp_path / "o/results.jsonl").read_text())
    assert row["error"] is None and row["prediction"].strip()
    summary = json.loads((tmp_path / "o/summary.json").read_text())
    assert summary["chain"] == "summarize"


def test_append_adds_an_export_to_a_regression_set_once(tmp_path: Path) -> None:
    """`python -m eval append EXPORT --to SET`: the export's cases are appended, a second time nothing
    is, and a bad export is refused whole (the set untouched)."""
    export = tmp_path / "export.jsonl"
    cases = [
        {
            "id": "s1-2",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"}],
            "reference": "Lima.",
            "metadata": {"source": "slipway-session", "session_id": "s1"},
        },
        {"id": "s1-4", "messages": [{"role": "user", "content": "And of Chile?"}], "reference": "Santiago."},
    ]
    export.write_text("".join(json.dumps(c) + "\n" for c in cases))
    # A path longer than a console line: the message must not be wrapped where a pipe reads it.
    folder = tmp_path / "a-folder-name-long-enough-to-pass-the-eighty-columns-of-a-console"
    folder.mkdir()
    regression = folder / "regression.jsonl"
    regression.write_text('{"id": "old", "prompt": "2+2?", "reference": "4"}')  # no final newline
    out = cli("append", str(export), "--to", str(regression))
    assert out.returncode == 0, out.stderr
    assert f"2 case(s) appended to {regression}; 0 already there" in out.stdout  # one line, the path whole
    assert [c.id for c in load_dataset(regression)] == ["old", "s1-2", "s1-4"]
    again = cli("append", str(export), "--to", str(regression))
    assert f"0 case(s) appended to {regression}; 2 already there" in again.stdout
    before = regression.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(cases[0] | {"id": "new"}) + "\n" + '{"id": "x"}\n')
    refused = cli("append", str(bad), "--to", str(regression))
    assert refused.returncode == 2 and "bad.jsonl:2" in refused.stderr
    assert regression.read_text() == before
