"""Semantic similarity between each answer and its reference: the cosine of their embeddings, from any
embedding provider Slipway has (`ollama:MODEL`, `gemini:MODEL`, `openai:BASE_URL` with a model, or a
Slipway URL's /v1/embeddings), best over the references, with a bootstrap interval over cases.

Why: a correct answer in other words scores low on n-gram metrics and high here. The embedded model
has no embeddings (docs/embeddings.md says why), so this needs a remote embedder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eval.cache import ResponseCache

BATCH = 32


def make_embedder(target: str, model: str | None, api_key: str | None) -> tuple[Any, dict[str, Any]]:
    """The embedding client and its identity (for the cache), through the service's own providers."""
    from app.core.config import get_settings
    from app.core.models_file import ModelSpec
    from app.providers.embedders import OpenAIEmbedder
    from app.providers.registry import PROVIDERS

    if target.startswith(("http://", "https://")):
        if not model:
            raise ValueError("--similarity with a Slipway URL needs --similarity-model (an embedding model it serves)")
        base = target.rstrip("/")
        base = base if base.endswith("/v1") else base + "/v1"
        return OpenAIEmbedder(model, base, api_key or "none", 60.0), {"url": base, "model": model}
    provider, _, rest = target.partition(":")
    if provider == "local":
        raise ValueError("the embedded model has no embeddings: use ollama:MODEL, gemini:MODEL, openai:URL or a URL")
    if provider == "openai":
        spec = ModelSpec(name=model or "embedder", provider="openai", base_url=rest, model=model, kind="embedding")
    elif provider in ("ollama", "gemini"):
        spec = ModelSpec(name=rest or provider, provider=provider, model=model or rest or None, kind="embedding")
    else:
        raise ValueError(f"unknown embedding target {target!r}: use ollama:MODEL, gemini:MODEL, openai:URL or a URL")
    PROVIDERS.resolve(spec)
    embedder = PROVIDERS.get(spec.provider).embedder(spec, get_settings())
    return embedder, {"target": target, "spec": spec.model_dump(mode="json")}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm else 0.0


async def similarities(
    rows: list[dict[str, Any]], target: str, model: str | None, api_key: str | None, cache: ResponseCache | None
) -> str:
    """Add `metrics.similarity` (best cosine over the references) to every scored row; returns the name."""
    embedder, identity = make_embedder(target, model, api_key)
    todo: list[tuple[dict[str, Any], str]] = []
    try:
        for row in rows:
            if row.get("error") is not None or row.get("metrics") is None:
                continue
            key = ResponseCache.key(kind="similarity", embedder=identity, a=row["prediction"], refs=row["references"])
            hit = cache.get(key) if cache else None
            if hit is not None:
                row["metrics"]["similarity"] = hit["value"]
            else:
                todo.append((row, key))
        texts = [t for row, _ in todo for t in (row["prediction"] or " ", *row["references"])]
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors += (await embedder.embed(texts[start : start + BATCH], None)).vectors
        at = 0
        for row, key in todo:
            answer = np.array(vectors[at], dtype=float)
            refs = [np.array(v, dtype=float) for v in vectors[at + 1 : at + 1 + len(row["references"])]]
            at += 1 + len(row["references"])
            value = max(cosine(answer, ref) for ref in refs)
            row["metrics"]["similarity"] = value
            if cache:
                cache.put(key, {"value": value})
    finally:
        await embedder.aclose()
    return f"{target}" + (f" ({model})" if model else "")


def summarise_similarity(
    rows: list[dict[str, Any]], *, resamples: int, seed: int, embedder: str
) -> dict[str, Any] | None:
    values = np.array([r["metrics"]["similarity"] for r in rows if "similarity" in (r.get("metrics") or {})])
    if not values.size:
        return None
    idx = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    low, high = np.percentile(values[idx].mean(axis=1), [2.5, 97.5])
    return {"value": float(values.mean()), "ci_low": float(low), "ci_high": float(high), "embedder": embedder}


def add_similarity(
    rows: list[dict[str, Any]],
    *,
    target: str,
    model: str | None,
    api_key: str | None,
    cache: ResponseCache | None,
    resamples: int,
    seed: int,
) -> dict[str, Any] | None:
    from eval.runner import _run_async

    name = _run_async(similarities(rows, target, model, api_key, cache))
    return summarise_similarity(rows, resamples=resamples, seed=seed, embedder=name)
