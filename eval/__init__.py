"""Slipway's evaluation harness: BLEU and chrF (sacrebleu), ROUGE (rouge-score), METEOR (nltk).

Python API (what the notebooks use):

    from eval import load_dataset, run, score, compare
    cases = load_dataset("eval/datasets/sample.jsonl")
    results = run(cases, target="local", out="runs/a")        # generate + score + write files
    summary = score(predictions, out="runs/b")                  # score outputs made elsewhere
    diff = compare("runs/a", "runs/b")

CLI: `python -m eval --help`.
"""

from eval.compare import compare
from eval.datasets import Case, DatasetError, load_dataset
from eval.runner import run, score

__all__ = ["Case", "DatasetError", "compare", "load_dataset", "run", "score"]
