"""Slipway's evaluation harness: BLEU and chrF (sacrebleu), ROUGE-1/2/L/Lsum (rouge-score), METEOR
(nltk, WordNet shipped offline), exact match, length ratio, latency and tokens, each metric with a
seeded bootstrap 95% interval. Scores equal the libraries' own (tests/eval/test_parity.py).

Python API (what the notebooks use; the CLI is `python -m eval --help`):

    from eval import compare, load_dataset, run, score

    cases = load_dataset("eval/datasets/sample.jsonl")      # JSONL or CSV; bad lines -> DatasetError
    a = run(cases[:10], target="local", out="runs/a")        # generate, score, write the three files
    b = run(cases[:10], target="http://127.0.0.1:8000", api_key="...", chain="qa")  # a Slipway, no files
    a.values                                                 # {"bleu": 31.2, ..., "meteor": 0.41}
    a.summary["metrics"]["bleu"]                             # {"value", "ci_low", "ci_high"}
    a.rows[0]                                                # id, prompt, prediction, references, metrics...

    s = score([{"id": "1", "prediction": "Paris.", "reference": ["Paris.", "It is Paris."]}])
    s = score("predictions.jsonl", out="runs/c")             # outputs made elsewhere

    r = run(cases, target="local", mlflow=True)              # also one MLflow run ($MLFLOW_TRACKING_URI or
    r.mlflow_run_id                                          #  ./mlflow.db; a string: that URI); see eval.mlflow

    diff = compare(a, b)                                     # run directories or run/score results
    diff["metrics"]["meteor"]                                # {"a", "b", "delta", "ci_low", "ci_high",
                                                             #  "p_value", "wins", "losses", "ties"}

`run` targets: "local" (the packaged SmolLM2), "ollama:MODEL", "gemini:MODEL", "openai:BASE_URL" (run
in-process through app.providers, the code the service serves), or a Slipway URL (its OpenAI API).
Answers are cached in `cache_dir` (default .eval-cache/), so a re-run or an interrupted run costs
nothing; `use_cache=False` skips the cache. `run` drives its own event loop (in a worker thread when
one is already running, as in a Jupyter cell), so it is called the same way everywhere.
"""

from eval.compare import compare
from eval.datasets import Case, DatasetError, load_dataset
from eval.runner import Scored, run, score

__all__ = ["Case", "DatasetError", "Scored", "compare", "load_dataset", "run", "score"]
