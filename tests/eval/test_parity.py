"""The harness's fast paths give the reference libraries' numbers exactly, on varied generated data.

The published examples live in test_metrics.py; here random text hunts for the edge cases (punctuation,
underscores, digits, newlines, several references, empty answers) where a shortcut could drift.
"""

from __future__ import annotations

import random
import string

import pytest
import sacrebleu
from nltk.tokenize import NLTKWordTokenizer
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from eval import metrics
from eval.compare import compare

WORDS = (
    "the a cat cats dog dogs running runs ran quick fast car automobile house river cities city Paris "
    "answered answer question_mark x_y 42 3.5 U.S. don't well-known e-mail (note) [1] ; : ! ?"
).split()
CHARS = string.ascii_letters + string.digits + " _-'.,!?()[]:;\"/"


def texts(rng: random.Random, n: int) -> list[tuple[str, list[str]]]:
    """(prediction, references) pairs: word soup, character soup, newlines, 1-3 references, empties."""
    out = []
    for i in range(n):
        if i % 3 == 0:
            ref = "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 60)))
            pred = "".join(c if rng.random() < 0.8 else rng.choice(CHARS) for c in ref)
        else:
            words = [rng.choice(WORDS) for _ in range(rng.randint(1, 25))]
            ref = " ".join(words)
            pred = " ".join(w if rng.random() < 0.6 else rng.choice(WORDS) for w in words)
        if i % 7 == 0:
            ref = ref.replace(" ", "\n", 2)
        if i % 11 == 0:
            pred = pred.replace(" ", "\n", 1)
        refs = [ref] + [" ".join(rng.sample(WORDS, 5)) for _ in range(rng.randint(0, 2))]
        out.append(("" if i % 50 == 0 else pred, refs))
    return out


DATA = texts(random.Random(7), 400)


def test_rouge_equals_rouge_score_on_ascii() -> None:
    scorer = rouge_scorer.RougeScorer(list(metrics.ROUGE), use_stemmer=True)
    for pred, refs in DATA:
        theirs = scorer.score_multi(refs, pred)
        assert metrics.rouge(pred, refs) == {k: theirs[k].fmeasure for k in metrics.ROUGE}, (pred, refs)


def test_bleu_and_chrf_equal_sacrebleu_sentence_and_corpus() -> None:
    preds = [p for p, _ in DATA]
    refs = [r for _, r in DATA]
    batch = metrics.score_batch(preds, refs, workers=1)
    for (pred, rs), case in zip(DATA, batch.cases, strict=True):
        assert case["bleu"] == sacrebleu.sentence_bleu(pred, rs).score
        assert case["chrf"] == sacrebleu.sentence_chrf(pred, rs).score
    width = max(len(r) for r in refs)
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(width)]
    assert batch.corpus("bleu") == BLEU().corpus_score(preds, streams).score
    assert batch.corpus("chrf") == CHRF().corpus_score(preds, streams).score
    assert batch.corpus("bleu") > 0


def test_meteor_equals_nltk_with_its_default_stemmer_and_wordnet() -> None:
    tok = NLTKWordTokenizer().tokenize
    for pred, refs in DATA[:150]:
        assert metrics.meteor(pred, refs) == meteor_score([tok(r) for r in refs], tok(pred)), (pred, refs)


def test_rouge_keeps_words_of_every_script() -> None:
    assert metrics.rouge("हिन्दी भाषा", ["हिन्दी भाषा"])["rouge1"] == 1.0
    assert metrics.rouge("हिन्दी भाषा सुंदर", ["हिन्दी भाषा"])["rouge1"] == pytest.approx(0.8)
    assert metrics.rouge("Ein schöner Tag", ["ein schöner tag"])["rougeL"] == 1.0
    # the library splits "schöner" into "sch" and "ner"; the harness keeps the word whole
    assert metrics.rouge("schöner", ["schön"])["rouge1"] == 0.0


def test_bootstrap_depends_on_the_seed_only() -> None:
    batch = metrics.score_batch([p for p, _ in DATA[:100]], [r for _, r in DATA[:100]])
    first = metrics.summarise(batch, resamples=300, seed=1)
    assert first == metrics.summarise(batch, resamples=300, seed=1)
    other = metrics.summarise(batch, resamples=300, seed=2)
    assert all(first[m]["value"] == other[m]["value"] for m in metrics.ALL)
    assert any(first[m]["ci_low"] != other[m]["ci_low"] for m in metrics.ALL)


@pytest.mark.slow
def test_parallel_scoring_equals_serial() -> None:
    data = texts(random.Random(11), metrics.PARALLEL_MIN + 3)
    preds, refs = [p for p, _ in data], [r for _, r in data]
    serial = metrics.score_batch(preds, refs, workers=1)
    parallel = metrics.score_batch(preds, refs, workers=2)
    assert parallel.cases == serial.cases
    assert parallel.stats == serial.stats


def test_compare_p_values_equal_sacrebleu_paired_bootstrap(tmp_path) -> None:
    import json

    rng = random.Random(3)
    data = texts(rng, 60)
    runs = {}
    for name, noise in (("a", 0.0), ("b", 0.08)):
        rows = []
        for i, (pred, refs) in enumerate(data):
            words = pred.split()
            p = " ".join(w if rng.random() >= noise else rng.choice(WORDS) for w in words)
            rows.append({"id": f"c{i}", "prediction": p, "references": refs, "error": None})
        from eval.runner import score_rows

        score_rows(rows, resamples=10)
        runs[name] = tmp_path / name
        runs[name].mkdir()
        (runs[name] / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    result = compare(runs["a"], runs["b"], resamples=1000, seed=12345)
    a = [json.loads(x)["prediction"] for x in (runs["a"] / "results.jsonl").read_text().splitlines()]
    b = [json.loads(x)["prediction"] for x in (runs["b"] / "results.jsonl").read_text().splitlines()]
    refs = [r for _, r in data]
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(max(map(len, refs)))]
    _, scores = PairedTest([("a", a), ("b", b)], {"bleu": BLEU(), "chrf": CHRF()}, streams, test_type="bs")()
    assert result["metrics"]["bleu"]["delta"] == scores["BLEU"][1].score - scores["BLEU"][0].score
    assert result["metrics"]["bleu"]["p_value"] == scores["BLEU"][1].p_value
    assert result["metrics"]["chrf"]["p_value"] == scores["chrF2"][1].p_value
    assert 0.002 < result["metrics"]["bleu"]["p_value"] < 1  # an undecided case, not the (0 + 1) / 1001 floor


def test_identical_runs_are_not_significant(tmp_path) -> None:
    """Two runs with the same outputs: no difference, p = 1 on every metric (sacrebleu's formula alone
    would give its 1/(n+1) floor, which reads as significant)."""
    import json

    from eval.runner import score_rows

    rows = [{"id": f"c{i}", "prediction": p, "references": r, "error": None} for i, (p, r) in enumerate(texts(random.Random(5), 20))]
    score_rows(rows, resamples=10)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    result = compare(tmp_path / "a", tmp_path / "b", resamples=200, seed=1)
    for name, m in result["metrics"].items():
        assert m["delta"] == 0 and m["p_value"] == 1.0, (name, m)
        assert m["wins"] == m["losses"] == 0
