"""`python -m eval`: run, score, compare, report. Exit codes: 0 ok, 1 a --fail-under gate failed,
2 a usage or data error."""

from __future__ import annotations

import atexit
import gc
import json
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from eval.datasets import DatasetError, sha256_of

cli = typer.Typer(
    name="eval",
    help="Slipway's evaluation harness (BLEU, chrF, ROUGE, METEOR).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's own help: typer 0.29's rich help labels flags `<bool>`
)
out_console = Console()
err = Console(stderr=True)

FailUnder = Annotated[str | None, typer.Option("--fail-under", help="Gate, e.g. bleu=20,meteor=0.3: exit 1 if below.")]
MlflowOpt = Annotated[
    bool,
    typer.Option(
        "--mlflow", help="Log the run to MLflow ($MLFLOW_TRACKING_URI, else ./mlflow.db; pip install -e .[mlflow])."
    ),
]
MlflowUri = Annotated[
    str | None, typer.Option("--mlflow-uri", metavar="URI", help="Log to this MLflow tracking URI (implies --mlflow).")
]
Experiment = Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")]
JudgeOpt = Annotated[
    str | None,
    typer.Option(
        "--judge",
        metavar="TARGET",
        help="Also grade each answer 1-5 with this model (local | ollama:M | gemini:M | openai:URL | a Slipway URL).",
    ),
]
JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="The judge's model name at its target.")]
SimilarityOpt = Annotated[
    str | None,
    typer.Option(
        "--similarity",
        metavar="TARGET",
        help="Also score cosine similarity of answer and reference embeddings (ollama:M | gemini:M | openai:URL | URL).",
    ),
]
SimilarityModel = Annotated[str | None, typer.Option("--similarity-model", help="The embedding model at that target.")]


class AverageEta(ProgressColumn):
    """Time left from the run's average pace so far. Rich's own column estimates from the last 30 s and
    shows `-:--:--` whenever fewer than two cases finished in that window, which with a slow model (or
    answers arriving in bursts from a queue) was most of the run."""

    def render(self, task: Task) -> Text:
        if task.total is None or not task.completed or task.elapsed is None:
            return Text("ETA -:--:--", style="progress.remaining")
        left = (task.total - task.completed) * task.elapsed / task.completed
        minutes, seconds = divmod(round(left), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"ETA {hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def parse_gate(spec: str | None) -> dict[str, float]:
    from eval.metrics import ALL

    gates: dict[str, float] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in (*ALL, "exact_match", "judge", "similarity"):
            _fail(f"--fail-under: {part!r} is not METRIC=NUMBER with METRIC one of {', '.join(ALL)}")
        try:
            gates[name] = float(value)
        except ValueError:
            _fail(f"--fail-under: {value!r} is not a number")
        low, high = SCALES.get(name, (0.0, 1.0))
        if not low <= gates[name] <= high:
            hint = f"; did you mean {gates[name] / 100:g}?" if high == 1.0 and 1 < gates[name] <= 100 else ""
            _fail(f"--fail-under: {METRIC_NAMES.get(name, name)} is on {low:g}-{high:g}, got {gates[name]:g}{hint}")
    return gates


#: Each metric's range (all: higher is better), and how it reads in a sentence.
SCALES = {"bleu": (0.0, 100.0), "chrf": (0.0, 100.0), "judge": (1.0, 5.0), "similarity": (-1.0, 1.0)}
METRIC_NAMES = {
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "rougeLsum": "ROUGE-Lsum",
    "meteor": "METEOR",
    "exact_match": "exact match",
    "length_ratio": "length ratio",
    "judge": "the judge's grade",
    "similarity": "semantic similarity",
}
MEANINGS = {
    "bleu": "0-100, higher better: wording overlap",
    "chrf": "0-100, higher better: character overlap",
    "rouge1": "0-1, higher better: shared words",
    "rouge2": "0-1, higher better: shared word pairs",
    "rougeL": "0-1, higher better: longest shared run",
    "rougeLsum": "0-1, higher better: ROUGE-L by sentence",
    "meteor": "0-1, higher better: words, stems, synonyms",
    "exact_match": "0-1: share equal to a reference",
    "length_ratio": "answer/reference words; 1 = same length",
    "judge": "1-5, higher better: an LLM's rubric grade",
    "similarity": "-1-1, higher better: embedding cosine",
}


def usage_lines(summary: dict) -> list[str]:
    """Latency, tokens and the cache, in the words an evaluator reads them."""
    lines = []
    latency = summary.get("latency_s")
    if latency:
        lines.append(
            f"latency per answer: p50 {latency['p50']:.2f} s, p95 {latency['p95']:.2f} s, max {latency['max']:.2f} s"
        )
    usage = summary.get("usage") or {}
    if usage.get("prompt_tokens") is not None or usage.get("completion_tokens") is not None:
        lines.append(
            f"tokens: {usage.get('prompt_tokens') or 0:,} prompt, {usage.get('completion_tokens') or 0:,} completion"
        )
    if summary.get("cached") is not None:
        lines.append(f"answers from the cache: {summary['cached']} of {summary['n']}")
    if summary.get("duration_s") is not None:
        lines.append(f"took {summary['duration_s']:.1f} s")
    return lines


def gate_failures(summary: dict, gates: dict[str, float]) -> list[str]:
    return [
        f"{k} {summary['metrics'].get(k, {}).get('value', float('nan')):.4g} < {v:g}"
        for k, v in gates.items()
        if not summary["metrics"].get(k, {}).get("value", float("-inf")) >= v
    ]


def log_to_mlflow(
    out: Path, kind: str, failed: list[str], uri: str | None, experiment: str, dataset: Path | None
) -> None:
    try:
        from eval.mlflow.tracking import log_run

        run_id = log_run(out, kind=kind, uri=uri, experiment=experiment, failed_gates=failed, dataset_path=dataset)
    except RuntimeError as exc:
        _fail(str(exc))
        return
    err.print(f"logged to MLflow: run {run_id} in experiment {experiment!r}", highlight=False)


def show_and_gate(
    summary: dict,
    gates: dict[str, float],
    out: Path,
    *,
    kind: str = "run",
    mlflow: bool = False,
    mlflow_uri: str | None = None,
    experiment: str = "slipway-eval",
    dataset: Path | None = None,
) -> None:
    table = Table("metric", "value", "95% CI", "reads as", title=f"{summary['n']} cases, {summary['errors']} errors")
    for name, m in summary["metrics"].items():
        ci = f"{m['ci_low']:.4g} to {m['ci_high']:.4g}" if "ci_low" in m else ""
        table.add_row(name, f"{m['value']:.4g}", ci, MEANINGS.get(name, ""))
    out_console.print(table)
    for line in usage_lines(summary):
        out_console.print(line, highlight=False)
    err.print(
        f"report: {out / 'report.html'} (results.jsonl and summary.json beside it)", highlight=False, soft_wrap=True
    )
    failed = gate_failures(summary, gates)
    if mlflow or mlflow_uri:
        log_to_mlflow(out, kind, failed, mlflow_uri, experiment, dataset)
    if failed:
        err.print("[bold red]gate failed:[/] " + "; ".join(failed), highlight=False)
        raise typer.Exit(1)


@cli.command("run")
def run_cmd(
    dataset: Annotated[Path, typer.Argument(help="JSONL or CSV dataset.")],
    target: Annotated[
        str, typer.Option(help="local | ollama:MODEL | gemini:MODEL | openai:BASE_URL | http(s)://slipway")
    ],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    model: Annotated[str | None, typer.Option(help="Model name at the target.")] = None,
    chain: Annotated[
        str | None, typer.Option(help="Evaluate a chain (chat, summarize, qa) instead of plain chat.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Requests in flight at once.")] = 4,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    seed: Annotated[int, typer.Option(help="Sent to the model, and seeds the bootstrap.")] = 0,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")] = 128,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")] = False,
    cache_dir: Annotated[Path, typer.Option(help="Where answers are cached (SQLite).")] = Path(".eval-cache"),
    max_errors: Annotated[int | None, typer.Option(min=1, help="Stop after this many failed cases.")] = None,
    resamples: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    api_key: Annotated[str | None, typer.Option(envvar="SLIPWAY_API_KEY", help="Key for a Slipway URL target.")] = None,
    fail_under: FailUnder = None,
    mlflow: MlflowOpt = False,
    mlflow_uri: MlflowUri = None,
    experiment: Experiment = "slipway-eval",
    judge: JudgeOpt = None,
    judge_model: JudgeModel = None,
    similarity: SimilarityOpt = None,
    similarity_model: SimilarityModel = None,
) -> None:
    """Generate an answer per case, score, write results.jsonl, summary.json and report.html."""
    # A shell starts a script's background jobs (`cmd &`) with SIGINT ignored, and Python keeps an
    # inherited SIG_IGN: such a run could not be interrupted and ran to the end. Ctrl-C (or kill -INT
    # from a supervisor) means "stop and keep the cache" however this process was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from eval.datasets import load_dataset
    from eval.runner import run

    gates = parse_gate(fail_under)
    try:
        cases = load_dataset(dataset)
    except DatasetError as exc:
        _fail(str(exc))
    cases = cases[:limit] if limit else cases
    if target == "local" and concurrency > 1:
        # The embedded model answers one request at a time: more in flight only queue, and each one's
        # latency would include its wait.
        err.print(
            f"note: the embedded model answers one at a time; --concurrency {concurrency} lowered to 1",
            highlight=False,
        )
        concurrency = 1
    with Progress(
        TextColumn("evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        AverageEta(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("cases", total=len(cases))
        try:
            result = run(
                cases,
                target=target,
                out=out,
                model=model,
                chain=chain,
                concurrency=concurrency,
                seed=seed,
                params={"max_tokens": max_tokens},
                use_cache=not no_cache,
                cache_dir=cache_dir,
                max_errors=max_errors,
                resamples=resamples,
                api_key=api_key,
                progress=lambda: progress.advance(task),
                dataset_sha256=sha256_of(dataset),
                dataset_name=dataset.name,
                judge=judge,
                judge_model=judge_model,
                similarity=similarity,
                similarity_model=similarity_model,
            )
        except ValueError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            done = int(progress.tasks[0].completed)
            kept = f"the {done} answers so far are cached in {cache_dir}" if not no_cache else "nothing was kept"
            err.print(f"[yellow]interrupted:[/] {kept}; run the same command again to resume.", highlight=False)
            raise typer.Exit(130) from None
    if result.summary["stopped_at_max_errors"]:
        err.print(
            f"[bold red]stopped:[/] {result.summary['errors']} failed cases reached --max-errors; "
            f"partial results in {out}",
            highlight=False,
        )
        raise typer.Exit(1)
    show_and_gate(
        result.summary, gates, out, mlflow=mlflow, mlflow_uri=mlflow_uri, experiment=experiment, dataset=dataset
    )


@cli.command("score")
def score_cmd(
    predictions: Annotated[Path, typer.Argument(help='JSONL: {"id", "prediction", "reference"} per line.')],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    seed: Annotated[int, typer.Option(help="Seeds the bootstrap.")] = 0,
    resamples: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    fail_under: FailUnder = None,
    mlflow: MlflowOpt = False,
    mlflow_uri: MlflowUri = None,
    experiment: Experiment = "slipway-eval",
    judge: JudgeOpt = None,
    judge_model: JudgeModel = None,
    similarity: SimilarityOpt = None,
    similarity_model: SimilarityModel = None,
    api_key: Annotated[str | None, typer.Option(envvar="SLIPWAY_API_KEY", help="Key for a Slipway URL judge.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the judge's cache.")] = False,
    cache_dir: Annotated[Path, typer.Option(help="Where grades are cached (SQLite).")] = Path(".eval-cache"),
) -> None:
    """Score outputs made elsewhere (a record may carry `context`, which a --judge is given)."""
    from eval.runner import score

    gates = parse_gate(fail_under)
    if not predictions.is_file():
        _fail(f"{predictions}: not found")
    try:
        result = score(
            predictions, out=out, seed=seed, resamples=resamples, judge=judge, judge_model=judge_model,
            api_key=api_key, use_cache=not no_cache, cache_dir=cache_dir, similarity=similarity,
            similarity_model=similarity_model,
        )  # fmt: skip
    except (DatasetError, ValueError) as exc:
        _fail(str(exc))
    show_and_gate(
        result.summary,
        gates,
        out,
        kind="score",
        mlflow=mlflow,
        mlflow_uri=mlflow_uri,
        experiment=experiment,
        dataset=predictions,
    )


@cli.command("compare")
def compare_cmd(
    dir_a: Annotated[Path, typer.Argument(help="Run directory A (the baseline).")],
    dir_b: Annotated[Path, typer.Argument(help="Run directory B (the candidate).")],
    out: Annotated[Path | None, typer.Option(help="Write compare.json and report.html here.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the bootstrap.")] = 0,
    resamples: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    mlflow: MlflowOpt = False,
    mlflow_uri: MlflowUri = None,
    experiment: Experiment = "slipway-eval",
) -> None:
    """B against A on their shared cases: per-metric difference with a paired bootstrap p-value, wins, losses."""
    from eval.compare import compare
    from eval.report import write_report

    for d in (dir_a, dir_b):
        if not (d / "results.jsonl").is_file():
            _fail(f"{d}: no results.jsonl (not a run directory)")
    try:
        result = compare(dir_a, dir_b, seed=seed, resamples=resamples)
    except ValueError as exc:
        _fail(str(exc))
    if result["differences"]:
        err.print(
            "[yellow]warning:[/] A and B differ in more than the change under test: "
            + "; ".join(result["differences"]),
            highlight=False,
        )
    table = Table(title=f"B against A: {result['n']} shared cases, paired bootstrap")
    for head in ("metric", "A", "B", "B - A", "95% CI", "p", "better", "worse"):
        table.add_column(head, no_wrap=True, justify="left" if head == "metric" else "right")
    for name, m in result["metrics"].items():
        colour = "green" if m["delta"] > 0 else "red" if m["delta"] < 0 else "white"
        table.add_row(
            name,
            f"{m['a']:.3g}",
            f"{m['b']:.3g}",
            f"[{colour}]{m['delta']:+.3g}[/]",
            f"{m['ci_low']:+.3g}..{m['ci_high']:+.3g}",
            f"{m['p_value']:.3f}",
            str(m["wins"]),
            str(m["losses"]),
        )
    out_console.print(table)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        out_console.print(str(write_report(out)), soft_wrap=True)
    if mlflow or mlflow_uri:
        try:
            from eval.mlflow.tracking import log_compare

            run_id = log_compare(result, dir_a, dir_b, uri=mlflow_uri, experiment=experiment, out=out)
        except RuntimeError as exc:
            _fail(str(exc))
            return
        err.print(f"logged to MLflow: run {run_id} in experiment {experiment!r}", highlight=False)


#: The packaged sample set (eval/datasets/sample.jsonl): what a scheduled run evaluates by default.
SAMPLE = Path(__file__).resolve().parent / "datasets" / "sample.jsonl"


@cli.command("scheduled")
def scheduled_cmd(
    url: Annotated[str, typer.Option("--url", envvar="SLIPWAY_URL", help="The deployed Slipway (its base URL).")],
    dataset: Annotated[Path, typer.Option(envvar="EVAL_DATASET", help="JSONL or CSV cases.")] = SAMPLE,
    fail_under: Annotated[
        str | None, typer.Option(envvar="EVAL_FAIL_UNDER", help="Gate, e.g. meteor=0.2,judge=3.")
    ] = None,
    out: Annotated[Path, typer.Option(envvar="EVAL_OUT", help="Output directory.")] = Path("eval-run"),
    model: Annotated[str | None, typer.Option(envvar="EVAL_MODEL", help="Model name at the service.")] = None,
    limit: Annotated[int | None, typer.Option(envvar="EVAL_LIMIT", min=1, help="Only the first N cases.")] = None,
    judge: Annotated[str | None, typer.Option(envvar="EVAL_JUDGE", help="A judge target (see run --judge).")] = None,
    mlflow_uri: Annotated[
        str | None, typer.Option(envvar="MLFLOW_TRACKING_URI", help="Log the run there (unset: not logged).")
    ] = None,
    experiment: Annotated[str, typer.Option(envvar="EVAL_EXPERIMENT")] = "slipway-continuous",
    api_key: Annotated[str | None, typer.Option(envvar="SLIPWAY_API_KEY", help="A key of that service.")] = None,
) -> None:
    """Continuous evaluation of a deployed Slipway, configured by environment variables so a scheduler
    runs it with no arguments: answers generated afresh (no cache), scored, gated, logged to MLflow.
    The scheduled GitHub workflow and the Container Apps Job both run exactly this."""
    run_cmd(
        dataset=dataset, target=url, out=out, model=model, chain=None, concurrency=4, limit=limit, seed=0,
        max_tokens=128, no_cache=True, cache_dir=Path(".eval-cache"), max_errors=None, resamples=1000,
        api_key=api_key, fail_under=fail_under, mlflow=False, mlflow_uri=mlflow_uri, experiment=experiment,
        judge=judge, judge_model=None, similarity=None, similarity_model=None,
    )  # fmt: skip


@cli.command("append")
def append_cmd(
    source: Annotated[str, typer.Argument(help="A conversation export: a file, or its URL /api/sessions/ID/export.")],
    dataset: Annotated[Path, typer.Option("--to", help="The regression set (JSONL) to append to.")],
    api_key: Annotated[str | None, typer.Option(envvar="SLIPWAY_API_KEY", help="Key for an export URL.")] = None,
) -> None:
    """Append a tester's conversation export to a regression set (ids already there are skipped)."""
    from eval.datasets import append_cases

    if source.startswith(("http://", "https://")):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        try:
            response = httpx.get(source, headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            _fail(f"cannot fetch {source}: {type(exc).__name__}")
            return
        if response.status_code == 401:
            _fail(f"{source} answered 401: set SLIPWAY_API_KEY (or --api-key) to a key of that service")
        if response.status_code != 200:
            _fail(f"{source} answered {response.status_code}: {response.text[:200]}")
        text = response.text
    else:
        if not Path(source).is_file():
            _fail(f"{source}: not found")
        text = Path(source).read_text(encoding="utf-8")
    try:
        added, skipped = append_cases(text, source, dataset)
    except DatasetError as exc:
        _fail(str(exc))
        return
    # soft_wrap: a path is never broken at the console's width (80 columns when the output is a pipe).
    out_console.print(
        f"{added} case(s) appended to {dataset}; {skipped} already there", highlight=False, soft_wrap=True
    )


@cli.command("report")
def report_cmd(run_dir: Annotated[Path, typer.Argument(help="A run directory, or a compare --out directory.")]) -> None:
    """Rebuild report.html from a run directory (summary.json, results.jsonl) or a comparison's compare.json."""
    from eval.report import write_report

    if not (run_dir / "summary.json").is_file() and not (run_dir / "compare.json").is_file():
        _fail(f"{run_dir}: no summary.json or compare.json (not a run or comparison directory)")
    out_console.print(str(write_report(run_dir)), soft_wrap=True)


def main() -> None:
    # Leaving the interpreter collects every object still alive (WordNet's caches, MLflow's modules):
    # 1 s of a 1,000-case score, 2 s with --mlflow, spent on memory the OS frees anyway. Registered
    # first, this runs after every other exit handler (MLflow's flushes included) and leaves the
    # objects out of those last collections.
    atexit.register(gc.freeze)
    cli()


if __name__ == "__main__":
    main()
