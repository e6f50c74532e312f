"""Scoring speed: `eval.score`'s metric code against a plain per-pair loop over the three libraries.

Both score the same 10,000 generated pairs in one run; the script checks the per-case scores are
identical, then prints pairs/s for each and the ratio (target >= 2x).

    .venv/bin/python -m bench.eval_speed [--pairs 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

WORDS = (
    "the a cat dog runs quickly slowly fast quick car house river city green blue large small "
    "model answer question bread history capital paris water boils jumps over lazy brown fox"
).split()


def pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ref = [rng.choice(WORDS) for _ in range(20)]
        pred = [w if rng.random() < 0.7 else rng.choice(WORDS) for w in ref]
        out.append((" ".join(pred), " ".join(ref)))
    return out


def plain_loop(batch: list[tuple[str, str]]) -> list[tuple[float, ...]]:
    """What a user would write: each library called per pair with its defaults (stemming on)."""
    import sacrebleu
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    from eval.wordnet import ensure_on_path

    ensure_on_path()
    tok = NLTKWordTokenizer().tokenize
    # rouge-score's own tokenizer gives the same tokens as the harness's on this ASCII data.
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    out = []
    for pred, ref in batch:
        r = scorer.score(ref, pred)
        out.append(
            (
                sacrebleu.sentence_bleu(pred, [ref]).score,
                sacrebleu.sentence_chrf(pred, [ref]).score,
                *(r[k].fmeasure for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")),
                meteor_score([tok(ref)], tok(pred)),
            )
        )
    return out


def harness_chunk(batch: list[tuple[str, str]]) -> list[tuple[float, ...]]:
    from eval import metrics

    rows = []
    for pred, ref in batch:
        s = metrics.sentence_scores(pred, [ref])
        rows.append((s["bleu"], s["chrf"], s["rouge1"], s["rouge2"], s["rougeL"], s["rougeLsum"], s["meteor"]))
    return rows


def harness(batch: list[tuple[str, str]], workers: int) -> list[tuple[float, ...]]:
    """The harness's path: cached scorer and stemmer, split across processes."""
    size = (len(batch) + workers - 1) // workers
    chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
    with ProcessPoolExecutor(workers) as pool:
        return [row for part in pool.map(harness_chunk, chunks) for row in part]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "eval_speed.json")
    args = parser.parse_args()
    from eval.wordnet import install

    install()
    data = pairs(args.pairs)
    plain_loop(data[:5])  # warm: WordNet load etc., for both
    harness_chunk(data[:5])
    t0 = time.perf_counter()
    base = plain_loop(data)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = harness(data, args.workers)
    t_fast = time.perf_counter() - t0
    assert base == fast, "the harness must give identical scores"
    result = {
        "pairs": args.pairs,
        "workers": args.workers,
        "plain_pairs_per_s": args.pairs / t_plain,
        "harness_pairs_per_s": args.pairs / t_fast,
        "ratio": t_plain / t_fast,
        "identical": True,
    }
    print(f"scoring {args.pairs} pairs (BLEU, chrF, ROUGE-1/2/L/Lsum, METEOR), identical scores")
    print(f"  plain per-pair library loop : {result['plain_pairs_per_s']:8.0f} pairs/s")
    print(f"  eval harness ({args.workers} processes)  : {result['harness_pairs_per_s']:8.0f} pairs/s")
    print(f"  ratio: {result['ratio']:.2f}x (target >= 2x)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
