"""Slipway's metrics as MLflow GenAI scorers, for `mlflow.genai.evaluate`:

    import mlflow
    from eval.mlflow import scorers

    mlflow.genai.evaluate(
        data=[{"inputs": {"question": "..."}, "outputs": "...", "expectations": {"expected_response": "..."}}],
        scorers=scorers.ALL,            # or [scorers.meteor, scorers.rougeL, ...]
    )

Each scorer gives one case's value, computed by the code `python -m eval score` runs (eval.metrics), so
MLflow's `<name>/mean` equals that command's value for ROUGE-1/2/L/Lsum and METEOR (0-1), which are
means of per-case scores. BLEU and chrF (0-100) are corpus scores in `python -m eval`: n-gram counts
summed over all cases, then scored once. Their per-case value here is sacrebleu's sentence score (so
`bleu/mean` is the mean of results.jsonl's per-case `bleu`), and their `corpus` aggregation sums the
cases' statistics as `python -m eval` does: **`bleu/corpus` and `chrf/corpus` equal its BLEU and chrF**.
The statistics are held by the scorer between the cases and the aggregation, so run one
`mlflow.genai.evaluate` at a time with a given scorer object.

`expectations` takes `expected_response` (MLflow's name; a string or a list of acceptable answers)
or `references`; `outputs` a string, or a dict with `content`/`text`/`answer`, or OpenAI's chat body.
"""

from __future__ import annotations

import threading
from collections import Counter
from functools import lru_cache
from typing import Any

from mlflow.genai.scorers import scorer

from eval.metrics import sacrebleu_stats, score_from_stats, sentence_scores


def text_of(outputs: Any) -> str:
    if isinstance(outputs, str):
        return outputs
    if isinstance(outputs, dict):
        if "choices" in outputs:  # an OpenAI chat completion body
            return str(outputs["choices"][0]["message"].get("content") or "")
        for key in ("content", "text", "answer", "output", "prediction"):
            if isinstance(outputs.get(key), str):
                return str(outputs[key])
    raise ValueError(f"outputs must be a string or carry one (content/text/answer); got {type(outputs).__name__}")


def references_of(expectations: dict[str, Any] | None) -> tuple[str, ...]:
    expected = (expectations or {}).get("expected_response", (expectations or {}).get("references"))
    if isinstance(expected, str):
        return (expected,)
    if isinstance(expected, list) and expected and all(isinstance(e, str) for e in expected):
        return tuple(expected)
    raise ValueError("expectations need `expected_response` (a string or a list of strings) or `references`")


@lru_cache(maxsize=4096)
def _scores(prediction: str, references: tuple[str, ...]) -> dict[str, float]:
    """Every metric of one pair, computed once however many of these scorers ask."""
    return sentence_scores(prediction, list(references))


def _value(name: str, outputs: Any, expectations: dict[str, Any] | None) -> float:
    return _scores(text_of(outputs), references_of(expectations))[name]


class CorpusStats:
    """The sacrebleu statistics of each case a corpus metric scored, until MLflow aggregates them.

    MLflow hands an aggregation only the per-case values, so the cases' n-gram counts wait here; the
    `corpus` aggregation takes the newest cases whose values are exactly the ones it was given (cases of
    an evaluation that failed half-way are left behind and dropped), sums them and scores once.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._rows: list[tuple[float, list[int]]] = []
        self._lock = threading.Lock()

    def record(self, value: float, prediction: str, references: tuple[str, ...]) -> None:
        stats = sacrebleu_stats(self.name, [prediction], [list(references)])[0]
        with self._lock:
            self._rows.append((value, stats))

    def corpus(self, values: list[float]) -> float:
        with self._lock:
            rows, self._rows = self._rows[-len(values) :] if values else [], []
        if len(rows) != len(values) or Counter(v for v, _ in rows) != Counter(values):
            raise ValueError(
                f"{self.name}/corpus: the cases recorded do not match the {len(values)} values MLflow "
                "aggregates (was this scorer used by two evaluations at once?)"
            )
        return score_from_stats(self.name, [stats for _, stats in rows])

    def aggregation(self) -> Any:
        def corpus(values: list[float]) -> float:
            return self.corpus(values)

        return corpus


_CORPUS = {"bleu": CorpusStats("bleu"), "chrf": CorpusStats("chrf")}


def _corpus_value(name: str, outputs: Any, expectations: dict[str, Any] | None) -> float:
    prediction, references = text_of(outputs), references_of(expectations)
    value = _scores(prediction, references)[name]
    _CORPUS[name].record(value, prediction, references)
    return value


@scorer(name="bleu", aggregations=["mean", _CORPUS["bleu"].aggregation()])
def bleu(outputs: Any, expectations: dict[str, Any]) -> float:
    """sacrebleu's sentence BLEU per case, 0-100; `bleu/corpus` is the corpus BLEU `python -m eval` reports."""
    return _corpus_value("bleu", outputs, expectations)


@scorer(name="chrf", aggregations=["mean", _CORPUS["chrf"].aggregation()])
def chrf(outputs: Any, expectations: dict[str, Any]) -> float:
    """sacrebleu's sentence chrF per case, 0-100; `chrf/corpus` is the corpus chrF `python -m eval` reports."""
    return _corpus_value("chrf", outputs, expectations)


@scorer(name="rouge1")
def rouge1(outputs: Any, expectations: dict[str, Any]) -> float:
    """ROUGE-1 F1 (rouge-score, stemmed, best over the references), 0-1."""
    return _value("rouge1", outputs, expectations)


@scorer(name="rouge2")
def rouge2(outputs: Any, expectations: dict[str, Any]) -> float:
    """ROUGE-2 F1, 0-1."""
    return _value("rouge2", outputs, expectations)


@scorer(name="rougeL")
def rougeL(outputs: Any, expectations: dict[str, Any]) -> float:
    """ROUGE-L F1, 0-1."""
    return _value("rougeL", outputs, expectations)


@scorer(name="rougeLsum")
def rougeLsum(outputs: Any, expectations: dict[str, Any]) -> float:
    """ROUGE-Lsum F1, 0-1."""
    return _value("rougeLsum", outputs, expectations)


@scorer(name="meteor")
def meteor(outputs: Any, expectations: dict[str, Any]) -> float:
    """METEOR (nltk, offline WordNet), 0-1."""
    return _value("meteor", outputs, expectations)


ALL = [bleu, chrf, rouge1, rouge2, rougeL, rougeLsum, meteor]


def judge(target: str, model: str | None = None, *, api_key: str | None = None) -> Any:
    """An LLM judge as a scorer (eval.judge: a 1-5 grade on the rubric, with its rationale as MLflow
    feedback); `inputs` may carry `question` (or `prompt`) and `context` (faithfulness for QA)."""
    import asyncio
    import threading

    from mlflow.entities import Feedback

    from eval.judge import Judge

    grader = Judge(target, model, api_key=api_key)
    # One event loop for every grade: MLflow calls scorers from several threads at once, and the judge's
    # HTTP client (or model) belongs to the loop it first ran on.
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="slipway-judge", daemon=True).start()

    def _run_async(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    @scorer(name="judge")
    def grade(inputs: dict[str, Any], outputs: Any, expectations: dict[str, Any]) -> Feedback:
        question = str((inputs or {}).get("question") or (inputs or {}).get("prompt") or "")
        context = (inputs or {}).get("context")
        result = _run_async(grader.grade(question, list(references_of(expectations)), text_of(outputs), context))
        return Feedback(value=result["score"], rationale=result["rationale"])

    return grade
