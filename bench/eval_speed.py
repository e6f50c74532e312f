"""Scoring speed: `eval.score` against a plain loop calling the three libraries per pair.

Both score the same generated pairs (default 10,000; ~20 words each, Zipf-distributed over 3,000
WordNet words, so caches meet realistic repetition, not a toy vocabulary) in one run. The script
checks that every per-case BLEU, chrF, ROUGE-1/2/L/Lsum and METEOR score and both corpus scores are
identical, then prints pairs/s for each and the ratio (target >= 2x).

`eval.score` is timed end to end: reading the predictions file, scoring, 1,000 bootstrap resamples
per metric and writing results.jsonl, summary.json and report.html; the plain loop only scores.
Both start warm (WordNet loaded), since a one-time 4 s load would otherwise dominate either side.

    .venv/bin/python -m bench.eval_speed [--pairs 10000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

ORDER = ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "meteor")


def vocabulary(size: int = 3000, seed: int = 0) -> list[str]:
    from nltk.corpus import wordnet

    from eval.wordnet import ensure_on_path, install

    install()
    ensure_on_path()
    words = sorted(w for w in wordnet.all_lemma_names() if w.isalpha() and len(w) < 12)
    return random.Random(seed).sample(words, size)


def pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prediction, reference): the prediction keeps ~70% of the reference's words."""
    vocab = vocabulary()
    weights = [1 / rank for rank in range(1, len(vocab) + 1)]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ref = rng.choices(vocab, weights, k=rng.randint(12, 28))
        pred = [w if rng.random() < 0.7 else rng.choices(vocab, weights)[0] for w in ref]
        out.append((" ".join(pred).capitalize() + ".", " ".join(ref).capitalize() + "."))
    return out


def plain_loop(batch: list[tuple[str, str]]) -> tuple[list[tuple[float, ...]], float, float]:
    """What a user would write: each library per pair with its defaults, then sacrebleu's corpus scores."""
    import sacrebleu
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    tok = NLTKWordTokenizer().tokenize
    # rouge-score's own tokenizer gives the harness's tokens on this ASCII data.
    scorer = rouge_scorer.RougeScorer(list(ORDER[2:6]), use_stemmer=True)
    rows = []
    for pred, ref in batch:
        r = scorer.score(ref, pred)
        rows.append(
            (
                sacrebleu.sentence_bleu(pred, [ref]).score,
                sacrebleu.sentence_chrf(pred, [ref]).score,
                *(r[k].fmeasure for k in ORDER[2:6]),
                meteor_score([tok(ref)], tok(pred)),
            )
        )
    preds, refs = [p for p, _ in batch], [[r for _, r in batch]]
    return rows, sacrebleu.corpus_bleu(preds, refs).score, sacrebleu.corpus_chrf(preds, refs).score


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "eval_speed.json")
    args = parser.parse_args()

    from eval import metrics, score

    data = pairs(args.pairs)
    plain_loop(data[:5])  # warm: WordNet loaded, for both sides
    metrics.sentence_scores(*data[0][:1], [data[0][1]])

    t0 = time.perf_counter()
    base, base_bleu, base_chrf = plain_loop(data)
    t_plain = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.jsonl"
        path.write_text(
            "".join(json.dumps({"id": str(i), "prediction": p, "reference": r}) + "\n" for i, (p, r) in enumerate(data))
        )
        t0 = time.perf_counter()
        result = score(path, out=Path(tmp) / "run")
        t_score = time.perf_counter() - t0
        rows = [json.loads(x) for x in (Path(tmp) / "run" / "results.jsonl").read_text().splitlines()]

    ours = [tuple(r["metrics"][k] for k in ORDER) for r in rows]
    corpus = result.summary["metrics"]
    identical = ours == base and corpus["bleu"]["value"] == base_bleu and corpus["chrf"]["value"] == base_chrf
    if not identical:
        raise SystemExit("the harness's scores differ from the libraries': not a valid comparison")
    out = {
        "pairs": args.pairs,
        "workers": metrics.default_workers(),
        "plain_pairs_per_s": round(args.pairs / t_plain, 1),
        "score_pairs_per_s": round(args.pairs / t_score, 1),
        "ratio": round(t_plain / t_score, 2),
        "identical": identical,
    }
    print(f"{args.pairs} pairs (BLEU, chrF, ROUGE-1/2/L/Lsum, METEOR per case, corpus BLEU/chrF): identical scores")
    print(f"  plain per-pair library loop (1 process) : {out['plain_pairs_per_s']:8.0f} pairs/s")
    print(f"  eval.score ({out['workers']} processes, + bootstrap + files): {out['score_pairs_per_s']:8.0f} pairs/s")
    print(f"  ratio: {out['ratio']:.2f}x (target >= 2x)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
