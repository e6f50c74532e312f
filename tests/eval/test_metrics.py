"""Scores equal the reference libraries called directly, including their published examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer

from eval import metrics
from tests.servers import ROOT

SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
PER_CASE_REFS = [list(r) for r in zip(*REFS, strict=True)]


def test_sacrebleu_readme_example() -> None:
    assert round(metrics.corpus_bleu(SYS, PER_CASE_REFS), 2) == 48.53
    assert round(metrics.corpus_chrf(SYS, PER_CASE_REFS), 2) == 59.73
    assert metrics.corpus_bleu(SYS, PER_CASE_REFS) == sacrebleu.corpus_bleu(SYS, REFS).score


def test_nltk_meteor_docstring_example() -> None:
    hyp = "It is a guide to action which ensures that the military always obeys the commands of the party"
    ref = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert round(metrics.meteor(hyp, [ref]), 4) == 0.6944


def test_meteor_uses_wordnet_synonyms_offline() -> None:
    assert round(metrics.meteor("the car is quick", ["the car is fast"]), 4) == 0.9922
    tok = str.split
    assert metrics.meteor("the car is quick", ["the car is fast"]) == meteor_score(
        [tok("the car is fast")], tok("the car is quick")
    )


def test_rouge_matches_rouge_score_on_ascii() -> None:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    pred, ref = "The quick brown foxes jumped over the lazy dogs", "A quick brown fox jumps over the lazy dog"
    ours = metrics.rouge(pred, [ref])
    theirs = scorer.score(ref, pred)
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key].fmeasure)


def test_rouge_keeps_non_ascii_text() -> None:
    default = rouge_scorer.RougeScorer(["rouge1"]).score("猫 が 好き", "猫 が 好き")["rouge1"].fmeasure
    assert default == 0.0  # the library's own tokenizer drops it
    assert metrics.rouge("猫 が 好き", ["猫 が 好き"])["rouge1"] == 1.0


def test_sentence_level_per_case_equals_sacrebleu() -> None:
    s = metrics.sentence_scores(SYS[0], PER_CASE_REFS[0])
    assert s["bleu"] == sacrebleu.sentence_bleu(SYS[0], PER_CASE_REFS[0]).score
    assert s["chrf"] == sacrebleu.sentence_chrf(SYS[0], PER_CASE_REFS[0]).score
    assert s["exact_match"] == 1.0


def test_bootstrap_is_seeded_and_brackets_the_value() -> None:
    batch = metrics.score_batch(SYS, PER_CASE_REFS)
    a = metrics.summarise(batch, resamples=200, seed=3)
    assert a == metrics.summarise(batch, resamples=200, seed=3)
    assert a["bleu"]["value"] == sacrebleu.corpus_bleu(SYS, REFS).score
    assert a["chrf"]["value"] == sacrebleu.corpus_chrf(SYS, REFS).score
    for name in metrics.ALL:
        assert a[name]["ci_low"] <= a[name]["value"] <= a[name]["ci_high"], name
    assert a["bleu"]["ci_low"] < a["bleu"]["ci_high"]


@pytest.mark.slow
def test_forked_scoring_from_cold_caches_equals_one_process(tmp_path: Path) -> None:
    """`python -m eval score` of 1,000+ pairs forks two scorers with empty caches; they once shared the
    WordNet files' read position and failed (`No WordNet synset found`). Scored in a fresh process, as the
    CLI does, both ways must agree on every case."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from bench.eval_speed import pairs\n"
        "from eval.metrics import score_batch\n"
        "data = pairs(1200, seed=3)\n"
        "preds, refs = [p for p, _ in data], [[r] for _, r in data]\n"
        "forked = score_batch(preds, refs, workers=2).cases\n"
        "single = score_batch(preds, refs, workers=1).cases\n"
        "print(json.dumps({'same': forked == single, 'n': len(forked)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"same": True, "n": 1200}
