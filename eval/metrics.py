"""Metrics computed exactly as the reference libraries compute them, plus bootstrap intervals.

- BLEU, chrF: sacrebleu; corpus level with references passed as *streams* (a flat list silently
  gives 0), and sentence level per case. Scale 0-100.
- ROUGE-1/2/L/Lsum: rouge-score, F1, stemming on, with a tokenizer that keeps non-ASCII words
  (the default one drops them: two identical Chinese strings score 0). Scale 0-1.
- METEOR: nltk with offline WordNet (eval/wordnet.py), pre-tokenised with NLTKWordTokenizer. Scale 0-1.
The stemmer is cached (rouge-score re-stems every token: the bottleneck).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

CORPUS = ("bleu", "chrf")
SENTENCE = ("rouge1", "rouge2", "rougeL", "rougeLsum", "meteor")
ALL = (*CORPUS, *SENTENCE)


@lru_cache(maxsize=1)
def _bleu():
    from sacrebleu.metrics import BLEU

    return BLEU()


@lru_cache(maxsize=1)
def _sentence_bleu():
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)


@lru_cache(maxsize=1)
def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF()


def streams(references: Sequence[Sequence[str]]) -> list[list[str]]:
    """Per-case reference lists -> sacrebleu's streams (padded with None where a case has fewer)."""
    width = max(len(r) for r in references)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]  # type: ignore[misc]


def corpus_bleu(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    return _bleu().corpus_score(list(predictions), streams(references)).score


def corpus_chrf(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    return _chrf().corpus_score(list(predictions), streams(references)).score


class _Tokenizer:
    """rouge-score's tokenizer without the ASCII-only filter: lower-case, words of any script, stemmed."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self._stem = lru_cache(maxsize=200_000)(porter.PorterStemmer().stem)

    def tokenize(self, text: str) -> list[str]:
        tokens = re.findall(r"\w+", text.lower(), flags=re.UNICODE)
        return [self._stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(SENTENCE[:4]), use_stemmer=True, tokenizer=_Tokenizer())


@lru_cache(maxsize=1)
def _word_tokenizer():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


@lru_cache(maxsize=1)
def _meteor_ready() -> bool:
    from eval.wordnet import ensure_on_path, install

    install()
    ensure_on_path()
    return True


def rouge(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """Best F1 over the references (rouge-score's `score_multi`), target first as the library wants."""
    scores = _rouge().score_multi(list(references), prediction)
    return {k: scores[k].fmeasure for k in SENTENCE[:4]}


def meteor(prediction: str, references: Sequence[str]) -> float:
    from nltk.translate.meteor_score import meteor_score

    _meteor_ready()
    tok = _word_tokenizer().tokenize
    return float(meteor_score([tok(r) for r in references], tok(prediction)))


def sentence_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    out = {
        "bleu": _sentence_bleu().sentence_score(prediction, list(references)).score,
        "chrf": _chrf().sentence_score(prediction, list(references)).score,
        **rouge(prediction, references),
        "meteor": meteor(prediction, references),
        "exact_match": float(any(prediction.strip() == r.strip() for r in references)),
        "length_ratio": len(prediction.split()) / max(1, min(len(r.split()) for r in references)),
    }
    return out


def bootstrap(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    per_case: dict[str, np.ndarray],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Point value and seeded 95% percentile interval for every metric (corpus BLEU/chrF re-scored)."""
    n = len(predictions)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    out: dict[str, dict[str, float]] = {}
    values = {
        "bleu": corpus_bleu(predictions, references),
        "chrf": corpus_chrf(predictions, references),
        **{k: float(np.mean(per_case[k])) for k in SENTENCE},
    }
    for name in ALL:
        if name in CORPUS:
            # Corpus BLEU/chrF are functions of summed per-sentence statistics: resample the rows.
            metric = _bleu() if name == "bleu" else _chrf()
            stats = np.array(metric._extract_corpus_statistics(list(predictions), streams(references)))
            samples = [metric._compute_score_from_stats(list(stats[idx].sum(axis=0))).score for idx in draws]
        else:
            samples = per_case[name][draws].mean(axis=1)
        low, high = np.percentile(samples, [2.5, 97.5])
        out[name] = {"value": float(values[name]), "ci_low": float(low), "ci_high": float(high)}
    return out
