"""Run a dataset against a target, score it, and write results.jsonl, summary.json and report.html."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from eval import metrics
from eval.cache import ResponseCache
from eval.datasets import Case, load_dataset, sha256_of


@dataclass
class Scored:
    """What `run` and `score` return: summary.json's content and results.jsonl's rows."""

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    #: The MLflow run this was logged as (`mlflow=`), else None.
    mlflow_run_id: str | None = None

    @property
    def values(self) -> dict[str, float]:
        """Each metric's value, e.g. `{"bleu": 31.2, "meteor": 0.41, ...}`."""
        return {name: m["value"] for name, m in self.summary["metrics"].items()}


def chain_input(case: Case, chain: str) -> dict[str, Any]:
    """A case's input for a chain: its explicit `input`, else the prompt mapped to the chain's field."""
    if case.input is not None:
        return case.input
    meta = case.metadata
    if chain == "summarize":
        return {"text": case.prompt_text, "sentences": int(meta.get("sentences", 1))}
    if chain == "qa":
        return {"question": case.prompt_text, "context": meta.get("context", "")}
    return {"question": case.prompt_text}


def score_rows(
    rows: list[dict[str, Any]], *, resamples: int = 1000, seed: int = 0, workers: int | None = None
) -> dict[str, Any]:
    """Add per-case metrics to rows (errors excluded from scoring) and return the metrics summary."""
    ok = [r for r in rows if r.get("error") is None]
    batch = metrics.score_batch([r["prediction"] for r in ok], [r["references"] for r in ok], workers=workers)
    for row, scores in zip(ok, batch.cases, strict=True):
        row["metrics"] = scores
    return metrics.summarise(batch, resamples=resamples, seed=seed)


def add_similarity(rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any] | None:
    from eval.similarity import add_similarity as add

    return add(rows, **kwargs)


def judged(
    rows: list[dict[str, Any]],
    contexts: dict[str, str | None],
    *,
    judge: str,
    judge_model: str | None,
    api_key: str | None,
    cache: ResponseCache | None,
    resamples: int,
    seed: int,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Grade every answered row with the judge (in place) and return the grade's summary."""
    from eval.judge import Judge, summarise_grades

    grader = Judge(judge, judge_model, api_key=api_key, cache=cache)
    _run_async(grader.grade_rows(rows, contexts, progress))
    for row in rows:
        if "score" in (row.get("judge") or {}) and row.get("metrics") is not None:
            row["metrics"]["judge"] = float(row["judge"]["score"])
    return summarise_grades(rows, resamples=resamples, seed=seed, judge=grader.name)


def usage_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency (seconds, answers generated in this run; cached ones keep their first latency) and tokens."""
    latencies = np.array([r["latency_s"] for r in rows if r.get("latency_s") is not None], dtype=float)
    usage = [r["usage"] or {} for r in rows if r.get("usage")]
    tokens = {
        k: (sum(u[k] for u in usage if u.get(k) is not None) if any(u.get(k) is not None for u in usage) else None)
        for k in ("prompt_tokens", "completion_tokens")
    }
    latency = (
        {
            "mean": float(latencies.mean()),
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)),
            "max": float(latencies.max()),
        }
        if latencies.size
        else None
    )
    return {"latency_s": latency, "usage": tokens}


def tracked(
    scored: Scored, out: str | Path | None, kind: str, mlflow: bool | str, experiment: str, dataset: Any
) -> Scored:
    """Log to MLflow when asked (`mlflow=True`: MLFLOW_TRACKING_URI or ./mlflow.db; a string: that URI)."""
    if not mlflow:
        return scored
    from eval.mlflow.tracking import log_result

    scored.mlflow_run_id = log_result(
        scored,
        out=out,
        kind=kind,
        uri=mlflow if isinstance(mlflow, str) else None,
        experiment=experiment,
        dataset_path=dataset if isinstance(dataset, (str, Path)) else None,
    )
    return scored


def write_outputs(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from eval.report import write_report

    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    write_report(out)


async def _generate(
    cases: Sequence[Case],
    target: Any,
    *,
    params: dict[str, Any],
    chain: str | None,
    concurrency: int,
    cache: ResponseCache | None,
    max_errors: int | None,
    progress: Callable[[], None] | None,
) -> tuple[list[dict[str, Any]], bool]:
    """Answers in dataset order; True when --max-errors stopped the run (unstarted cases are left out)."""
    semaphore = asyncio.Semaphore(concurrency)
    rows: list[dict[str, Any] | None] = [None] * len(cases)
    errors = 0
    stop = asyncio.Event()

    async def one(i: int, case: Case) -> None:
        nonlocal errors
        messages = case.chat_messages()
        inp = chain_input(case, chain) if chain else None
        key = ResponseCache.key(
            target=getattr(target, "identity", target.name),
            model=target.model,
            params=params,
            chain=chain,
            messages=messages,
            input=inp,
        )
        row: dict[str, Any] = {
            "id": case.id,
            "prompt": case.prompt_text,
            "references": case.reference,
            "prediction": "",
            "latency_s": None,
            "usage": None,
            "error": None,
            "cached": False,
        }
        async with semaphore:
            if stop.is_set():
                return
            hit = cache.get(key) if cache else None
            if hit is not None:
                row.update(hit, cached=True)
            else:
                try:
                    ans = await target.answer(messages, params, inp)
                    row.update(
                        prediction=ans.text,
                        latency_s=ans.latency_s,
                        usage={"prompt_tokens": ans.prompt_tokens, "completion_tokens": ans.completion_tokens},
                    )
                    if cache:
                        cache.put(key, {k: row[k] for k in ("prediction", "latency_s", "usage")})
                except Exception as exc:  # one failed case is an error on that case; the run goes on
                    errors += 1
                    row["error"] = f"{type(exc).__name__}: {exc}"[:500]
                    if max_errors is not None and errors >= max_errors:
                        stop.set()
        rows[i] = row
        if progress:
            progress()

    await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))
    return [r for r in rows if r is not None], stop.is_set()


def _run_async(coro: Any) -> Any:
    """asyncio.run, or in a worker thread when a loop already runs here (a notebook cell)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="eval-run") as pool:
        return pool.submit(asyncio.run, coro).result()


def run(
    cases: Sequence[Case] | str | Path,
    *,
    target: str,
    out: str | Path | None = None,
    model: str | None = None,
    chain: str | None = None,
    concurrency: int = 4,
    limit: int | None = None,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    use_cache: bool = True,
    cache_dir: str | Path = ".eval-cache",
    max_errors: int | None = None,
    resamples: int = 1000,
    api_key: str | None = None,
    progress: Callable[[], None] | None = None,
    dataset_sha256: str | None = None,
    dataset_name: str | None = None,
    mlflow: bool | str = False,
    experiment: str = "slipway-eval",
    judge: str | None = None,
    judge_model: str | None = None,
    similarity: str | None = None,
    similarity_model: str | None = None,
) -> Scored:
    """Generate an answer per case and score; with `out`, write the three files there.

    `judge`: also grade each answer 1-5 with that target's model (eval.judge), cached like answers.

    Every answer is cached as it arrives (unless `use_cache` is off): an interrupted run (Ctrl-C raises
    KeyboardInterrupt here) resumes from the cache when run again.
    """
    from eval.targets import make_target

    dataset_sha = dataset_sha256
    source = cases
    if isinstance(cases, (str, Path)):
        dataset_name = dataset_name or Path(cases).name
        dataset_sha = sha256_of(cases)
        cases = load_dataset(cases)
    cases = list(cases)[:limit] if limit else list(cases)
    params = {"temperature": 0.0, "seed": seed, "max_tokens": 128, **(params or {})}
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    tgt = make_target(target, model, chain, api_key, params)
    cache = ResponseCache(Path(cache_dir) / "responses.sqlite") if use_cache else None
    try:
        rows, stopped = _run_async(
            _generate(
                cases,
                tgt,
                params=params,
                chain=chain,
                concurrency=concurrency,
                cache=cache,
                max_errors=max_errors,
                progress=progress,
            )
        )
        scores = score_rows(rows, resamples=resamples, seed=seed)
        if judge:
            contexts = {c.id: c.metadata.get("context") for c in cases}
            grade = judged(
                rows, contexts, judge=judge, judge_model=judge_model, api_key=api_key, cache=cache,
                resamples=resamples, seed=seed,
            )  # fmt: skip
            if grade:
                scores["judge"] = grade
        if similarity:
            similar = add_similarity(
                rows, target=similarity, model=similarity_model, api_key=api_key, cache=cache,
                resamples=resamples, seed=seed,
            )  # fmt: skip
            if similar:
                scores["similarity"] = similar
    finally:
        if cache:
            cache.close()
    summary = {
        "metrics": scores,
        "n": len(rows),
        "errors": sum(1 for r in rows if r["error"]),
        "stopped_at_max_errors": stopped,
        "cached": sum(1 for r in rows if r.get("cached")),
        **usage_summary(rows),
        "target": target,
        "model": tgt.model,
        "chain": chain,
        "params": params,
        "dataset": dataset_name,
        "dataset_sha256": dataset_sha,
        "started": started.isoformat(),
        "duration_s": round(time.perf_counter() - t0, 3),
    }
    if out is not None:
        write_outputs(Path(out), rows, summary)
    return tracked(Scored(summary=summary, rows=rows), out, "run", mlflow, experiment, source)


def _prediction_row(data: Any, default_id: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    if "prediction" not in data:
        raise ValueError("missing 'prediction'")
    refs = data.get("reference", data.get("references"))
    if refs is None:
        raise ValueError("missing 'reference'")
    refs = [refs] if isinstance(refs, str) else refs
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ValueError("reference must be a string or a non-empty list of strings")
    if not isinstance(data["prediction"], str):
        raise ValueError("prediction must be a string")
    return {
        "id": str(data.get("id", default_id)),
        "prompt": data.get("prompt", ""),
        "prediction": data["prediction"],
        "references": refs,
        "latency_s": data.get("latency_s"),
        "usage": data.get("usage"),
        "error": None,
        "context": data.get("context") if isinstance(data.get("context"), str) else None,
    }


def load_predictions(source: str | Path | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`{"id", "prediction", "reference"}` records (reference a string or a list; `references` also
    accepted, so a run's results.jsonl can be re-scored) from a JSONL file or a list. Every bad record
    is named (`file:line: problem`) and nothing is scored."""
    from eval.datasets import DatasetError

    problems: list[str] = []
    items: list[tuple[str, Any, str]] = []
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DatasetError(f"{path}: not found")
        for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                items.append((f"{path}:{line}", json.loads(text), str(line)))
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{line}: invalid JSON ({exc.msg})")
        name = str(path)
    else:
        items = [(f"predictions[{i}]", data, str(i + 1)) for i, data in enumerate(source)]
        name = "predictions"
    rows = []
    for where, data, default_id in items:
        try:
            rows.append(_prediction_row(data, default_id))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    ids = [r["id"] for r in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"{name}: duplicate ids: {', '.join(duplicates[:10])}")
    if problems:
        raise DatasetError("\n".join(problems))
    if not rows:
        raise DatasetError(f"{name}: no predictions")
    return rows


def score(
    predictions: str | Path | Iterable[dict[str, Any]],
    *,
    out: str | Path | None = None,
    seed: int = 0,
    resamples: int = 1000,
    workers: int | None = None,
    mlflow: bool | str = False,
    experiment: str = "slipway-eval",
    judge: str | None = None,
    judge_model: str | None = None,
    api_key: str | None = None,
    use_cache: bool = True,
    cache_dir: str | Path = ".eval-cache",
    similarity: str | None = None,
    similarity_model: str | None = None,
) -> Scored:
    """Score outputs made elsewhere; with `out`, write results.jsonl, summary.json and report.html there.
    `judge`: also grade each answer with that target's model (a record's `context` is given to it)."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    sha = sha256_of(predictions) if isinstance(predictions, (str, Path)) and Path(predictions).is_file() else None
    rows = load_predictions(predictions)
    scores = score_rows(rows, resamples=resamples, seed=seed, workers=workers)
    contexts = {r["id"]: r.pop("context", None) for r in rows}
    if judge or similarity:
        cache = ResponseCache(Path(cache_dir) / "responses.sqlite") if use_cache else None
        try:
            if judge:
                grade = judged(
                    rows, contexts, judge=judge, judge_model=judge_model, api_key=api_key, cache=cache,
                    resamples=resamples, seed=seed,
                )  # fmt: skip
                if grade:
                    scores["judge"] = grade
            if similarity:
                similar = add_similarity(
                    rows, target=similarity, model=similarity_model, api_key=api_key, cache=cache,
                    resamples=resamples, seed=seed,
                )  # fmt: skip
                if similar:
                    scores["similarity"] = similar
        finally:
            if cache:
                cache.close()
    summary = {
        "metrics": scores,
        "n": len(rows),
        "errors": 0,
        **usage_summary(rows),
        "target": "predictions",
        "model": None,
        "dataset": Path(predictions).name if isinstance(predictions, (str, Path)) else None,
        "dataset_sha256": sha,
        "started": started.isoformat(),
        "duration_s": round(time.perf_counter() - t0, 3),
    }
    if out is not None:
        write_outputs(Path(out), rows, summary)
    return tracked(Scored(summary=summary, rows=rows), out, "score", mlflow, experiment, predictions)
