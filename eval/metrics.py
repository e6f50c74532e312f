"""Metrics computed exactly as the reference libraries compute them, plus seeded bootstrap intervals.

- BLEU, chrF: sacrebleu. Each text is tokenised once: the per-case sufficient statistics give the
  sentence-level score (what `sacrebleu.sentence_bleu`/`sentence_chrf` return), the corpus score (their
  sum, what `corpus_score` returns with references passed as *streams*; a flat list silently gives 0)
  and every bootstrap resample. Scale 0-100.
- ROUGE-1/2/L/Lsum: rouge-score, F1, stemming on, best over the references like `score_multi`, with a
  tokenizer that keeps non-ASCII words (the default drops them: two identical Chinese strings score 0).
  On ASCII text its tokens are the library's. ROUGE-Lsum only differs from ROUGE-L when a text has a
  newline (one sentence each: the union LCS is the LCS), so its second LCS table is skipped otherwise.
  Scale 0-1.
- METEOR: nltk with offline WordNet (eval/wordnet.py), pre-tokenised with NLTKWordTokenizer. Scale 0-1.

Speed without changing a score: the Porter stemmer, WordNet's synset look-ups and the tokenisers are
memoised (the libraries recompute them for every word of every pair), and large batches are split
across processes (forked after WordNet is loaded, so no child reloads it).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import regex

CORPUS = ("bleu", "chrf")
ROUGE = ("rouge1", "rouge2", "rougeL", "rougeLsum")
SENTENCE = (*ROUGE, "meteor")
ALL = (*CORPUS, *SENTENCE)
EXTRA = ("exact_match", "length_ratio")
PARALLEL_MIN = 1000  # below this, starting processes costs more than it saves
_CACHE = 1 << 18


# ---------------------------------------------------------------- sacrebleu


@lru_cache(maxsize=1)
def _bleu() -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU()


@lru_cache(maxsize=1)
def _sentence_bleu() -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)  # what sacrebleu.sentence_bleu uses


@lru_cache(maxsize=1)
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


def streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-case reference lists -> sacrebleu's streams, padded with None where a case has fewer."""
    width = max(len(r) for r in references)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


def sacrebleu_stats(name: str, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[int]]:
    """One row of sufficient statistics per case: the only time sacrebleu tokenises the texts."""
    metric = _bleu() if name == "bleu" else _chrf()
    return [list(row) for row in metric._extract_corpus_statistics(list(predictions), streams(references))]


def score_from_stats(name: str, stats: Sequence[Sequence[int]] | np.ndarray, *, sentence: bool = False) -> float:
    """sacrebleu's score from summed statistics (its own corpus_score/sentence_score do exactly this)."""
    if name == "bleu":
        metric = _sentence_bleu() if sentence else _bleu()
    else:
        metric = _chrf()
    if isinstance(stats, np.ndarray):
        return float(metric._compute_score_from_stats(stats.sum(axis=0)).score)
    return float(metric._compute_score_from_stats([sum(col) for col in zip(*stats, strict=True)]).score)


def corpus_bleu(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    return score_from_stats("bleu", sacrebleu_stats("bleu", predictions, references))


def corpus_chrf(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    return score_from_stats("chrf", sacrebleu_stats("chrf", predictions, references))


# ---------------------------------------------------------------- rouge-score

_NON_WORD = regex.compile(r"[^\p{L}\p{M}\p{N}]+")  # rouge-score's [^a-z0-9]+, for every script


class _Tokenizer:
    """rouge-score's tokenizer without its ASCII-only filter: lower-case, split on anything that is not a
    letter, mark or digit, Porter-stem ASCII words longer than 3 characters (memoised)."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self._stem = lru_cache(maxsize=_CACHE)(porter.PorterStemmer().stem)

    def tokenize(self, text: str) -> list[str]:
        tokens = (t for t in _NON_WORD.split(text.lower()) if t)
        return [s for s in (self._stem(t) if len(t) > 3 and t.isascii() else t for t in tokens) if s]


@lru_cache(maxsize=2)
def _rouge(with_lsum: bool) -> Any:
    from rouge_score import rouge_scorer

    types = list(ROUGE) if with_lsum else list(ROUGE[:3])
    return rouge_scorer.RougeScorer(types, use_stemmer=True, tokenizer=_Tokenizer())


def rouge(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """F1 per ROUGE type, best over the references (rouge-score's `score_multi`; target first)."""
    best = dict.fromkeys(ROUGE, 0.0)
    for ref in references:
        if "\n" in ref or "\n" in prediction:
            scores = {k: v.fmeasure for k, v in _rouge(True).score(ref, prediction).items()}
        else:
            scores = {k: v.fmeasure for k, v in _rouge(False).score(ref, prediction).items()}
            scores["rougeLsum"] = scores["rougeL"]
        for k in ROUGE:
            best[k] = max(best[k], scores[k])
    return best


# ---------------------------------------------------------------- nltk METEOR


class _CachedStemmer:
    """The PorterStemmer nltk's METEOR uses by default, memoised (METEOR only calls `.stem`)."""

    def __init__(self) -> None:
        from nltk.stem.porter import PorterStemmer

        self.stem = lru_cache(maxsize=_CACHE)(PorterStemmer().stem)


class _CachedWordNet:
    """nltk's WordNet reader with `synsets` memoised (METEOR only calls `.synsets(word)`)."""

    def __init__(self) -> None:
        from nltk.corpus import wordnet

        self.synsets = lru_cache(maxsize=_CACHE)(wordnet.synsets)


@lru_cache(maxsize=1)
def _meteor_tools() -> tuple[Any, _CachedStemmer, _CachedWordNet]:
    """Offline WordNet installed and loaded once; the tokenizer is memoised per text."""
    from nltk.tokenize import NLTKWordTokenizer

    from eval.wordnet import ensure_on_path, install

    install()
    ensure_on_path()
    wordnet = _CachedWordNet()
    wordnet.synsets("warm")  # load the corpus now (a fork inherits it)
    tokenize = NLTKWordTokenizer().tokenize
    return lru_cache(maxsize=_CACHE)(lambda text: tuple(tokenize(text))), _CachedStemmer(), wordnet


def meteor(prediction: str, references: Sequence[str]) -> float:
    from nltk.translate.meteor_score import meteor_score

    tok, stemmer, wordnet = _meteor_tools()
    return float(meteor_score([tok(r) for r in references], tok(prediction), stemmer=stemmer, wordnet=wordnet))


# ---------------------------------------------------------------- per case, per batch


def case_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """Every per-case metric except BLEU/chrF (those come from the batch's sacrebleu statistics)."""
    return {
        **rouge(prediction, references),
        "meteor": meteor(prediction, references),
        "exact_match": float(any(prediction.strip() == r.strip() for r in references)),
        "length_ratio": len(prediction.split()) / max(1, min(len(r.split()) for r in references)),
    }


@dataclass
class Batch:
    """Per-case scores of a batch, and the sacrebleu statistics its corpus BLEU/chrF are summed from."""

    cases: list[dict[str, float]] = field(default_factory=list)
    stats: dict[str, list[list[int]]] = field(default_factory=lambda: {"bleu": [], "chrf": []})

    def extend(self, other: Batch) -> None:
        self.cases += other.cases
        for name in CORPUS:
            self.stats[name] += other.stats[name]

    def corpus(self, name: str) -> float:
        return score_from_stats(name, self.stats[name])

    def values(self, name: str) -> np.ndarray:
        return np.array([c[name] for c in self.cases], dtype=float)


def _score_chunk(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> Batch:
    batch = Batch(stats={name: sacrebleu_stats(name, predictions, references) for name in CORPUS})
    for i, (pred, refs) in enumerate(zip(predictions, references, strict=True)):
        row = {name: score_from_stats(name, [batch.stats[name][i]], sentence=True) for name in CORPUS}
        batch.cases.append(row | case_scores(pred, refs))
    return batch


def default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(2, cpus))


def score_batch(
    predictions: Sequence[str], references: Sequence[Sequence[str]], *, workers: int | None = None
) -> Batch:
    """Score every case. Large batches on Linux are split over forked processes (default: 2 cores)."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    if not predictions:
        return Batch()
    workers = default_workers() if workers is None else workers
    if workers < 2 or len(predictions) < PARALLEL_MIN or not sys.platform.startswith("linux"):
        return _score_chunk(predictions, references)
    # Load WordNet and import everything before forking: no child pays for it again, and no child
    # needs the import lock another thread of this process might hold at fork time.
    _score_chunk(["warm up\nnow"], [["warm up"]])
    size = -(-len(predictions) // workers)
    spans = [(i, i + size) for i in range(0, len(predictions), size)]
    batch = Batch()
    with ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_own_wordnet_files
    ) as pool:
        futures = [pool.submit(_score_chunk, predictions[a:b], references[a:b]) for a, b in spans]
        for future in futures:
            batch.extend(future.result())
    return batch


def _own_wordnet_files() -> None:
    """In a forked child: forget the WordNet data files opened before the fork, so this child opens its
    own. Inherited, they share one read position with the parent and the other children: one child's
    seek moved another's read, which then failed (`No WordNet synset found ... offset`; seen on a cold
    `python -m eval score` of 1,000 pairs, where the synset caches were still empty)."""
    from nltk.corpus import wordnet

    files = getattr(wordnet, "_data_file_map", None)
    if isinstance(files, dict):
        files.clear()


def sentence_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """All per-case metrics for one pair (what `score` writes per case in results.jsonl)."""
    return _score_chunk([prediction], [list(references)]).cases[0]


# ---------------------------------------------------------------- uncertainty


def percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def draws(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each case appears in each resample (resamples x n), drawn as sacrebleu's paired
    bootstrap draws its case indices; a resample's total is then one matrix product."""
    idx = np.random.default_rng(seed).choice(n, size=(resamples, n), replace=True)
    counts = np.empty((resamples, n), dtype=np.float64)
    for i, row in enumerate(idx):
        counts[i] = np.bincount(row, minlength=n)
    return counts


def resampled(batch: Batch, name: str, counts: np.ndarray) -> np.ndarray:
    """The metric on every resample: corpus BLEU/chrF re-scored from summed statistics, others averaged."""
    if name in CORPUS:
        # Integer counts times integer statistics: exact in float64, so the sums are sacrebleu's.
        sums = np.rint(counts @ np.array(batch.stats[name], dtype=np.float64)).astype(np.int64)
        metric = _bleu() if name == "bleu" else _chrf()
        return np.array([metric._compute_score_from_stats(row).score for row in sums])
    return counts @ batch.values(name) / counts.shape[1]


def summarise(batch: Batch, *, resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Point value and seeded 95% percentile bootstrap interval for every metric."""
    if not batch.cases:
        return {}
    counts = draws(len(batch.cases), resamples, seed)
    out: dict[str, dict[str, float]] = {}
    for name in ALL:
        value = batch.corpus(name) if name in CORPUS else float(batch.values(name).mean())
        low, high = percentile_ci(resampled(batch, name, counts))
        out[name] = {"value": value, "ci_low": low, "ci_high": high}
    for name in EXTRA:
        out[name] = {"value": float(batch.values(name).mean())}
    return out
