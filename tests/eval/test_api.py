"""The Python API the notebooks use: score lists or files, compare results or directories, bad records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu

from eval import DatasetError, Scored, compare, score

GOOD = [
    {
        "id": "1",
        "prediction": "The capital of France is Paris.",
        "reference": ["The capital of France is Paris.", "Paris."],
    },
    {"id": "2", "prediction": "Water boils at 100 degrees.", "reference": "Water boils at 100 degrees Celsius."},
    {"id": "3", "prediction": "Jupiter.", "reference": "Jupiter is the largest planet."},
]


def test_score_a_list_without_writing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = score(GOOD, resamples=100)
    assert isinstance(result, Scored) and list(tmp_path.iterdir()) == []
    refs = [
        ["The capital of France is Paris.", "Water boils at 100 degrees Celsius.", "Jupiter is the largest planet."],
        ["Paris.", None, None],
    ]
    assert result.values["bleu"] == sacrebleu.corpus_bleu([g["prediction"] for g in GOOD], refs).score
    assert set(result.values) >= {"chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "meteor", "exact_match"}
    assert result.rows[0]["metrics"]["exact_match"] == 1.0 and result.rows[0]["references"] == GOOD[0]["reference"]


def test_results_rescore_and_compare_in_memory_and_on_disk(tmp_path: Path) -> None:
    a = score(GOOD, out=tmp_path / "a", resamples=100)
    again = score(a.rows, resamples=100)  # a run's rows carry `references`: they score again as they are
    assert again.values == a.values
    worse = score([{**g, "prediction": "no idea"} for g in GOOD], out=tmp_path / "b", resamples=100)
    in_memory, on_disk = compare(a, worse, resamples=200), compare(tmp_path / "a", tmp_path / "b", resamples=200)
    assert in_memory["metrics"] == on_disk["metrics"]
    assert on_disk["metrics"]["meteor"]["delta"] < 0 and on_disk["metrics"]["meteor"]["losses"] == 3


def test_bad_records_are_all_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        score([{"id": "1", "prediction": "x"}, {"id": "1", "prediction": 3, "reference": "y"}, "text"])
    message = str(info.value)
    assert "predictions[0]: missing 'reference'" in message
    assert "predictions[1]: prediction must be a string" in message
    assert "predictions[2]: expected a JSON object" in message
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n" + json.dumps(GOOD[0]) + "\n{oops\n")
    with pytest.raises(DatasetError) as info:
        score(path)
    assert f"{path}:3: invalid JSON" in str(info.value) and "duplicate ids: 1" in str(info.value)


def test_compare_refuses_runs_with_different_references() -> None:
    a = score(GOOD, resamples=50)
    b = score([{**g, "reference": "something else"} for g in GOOD], resamples=50)
    with pytest.raises(ValueError, match="different references"):
        compare(a, b)


def test_sample_dataset_asks_each_question_once() -> None:
    from eval import load_dataset

    cases = load_dataset(Path(__file__).resolve().parents[2] / "eval/datasets/sample.jsonl")
    asked = [json.dumps(c.chat_messages()) for c in cases]
    assert len(cases) >= 60 and len(set(asked)) == len(asked)
    assert sum(len(c.reference) > 1 for c in cases) >= 10
