"""Constrained generation on the embedded model: tokens/s under a JSON schema's grammar against the
same prompt unconstrained, in one run, alternating A/B; and the schema-to-grammar build time for a
50-property schema, first build against a cached one. Prints figures and ratios; asserts nothing.

    .venv/bin/python -m bench.constrained [--runs 5] [--max-tokens 128] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from app.providers import local_output
from app.providers.llama_cpp import ChatLlamaCpp, packaged_model_path

PROMPT = [HumanMessage("Describe a fictional bakery: its name, city, founding year, products and staff.")]
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "city": {"type": "string"},
        "founded": {"type": "integer", "minimum": 1800, "maximum": 2030},
        "products": {"type": "array", "items": {"type": "string"}},
        "staff": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "notes": {"type": "string"},
    },
    "required": ["name", "city", "founded", "products", "staff", "notes"],
}


def wide_schema(properties: int) -> dict[str, Any]:
    kinds = [{"type": "string"}, {"type": "integer", "minimum": 0, "maximum": 99}, {"type": "boolean"},
             {"enum": ["a", "b", "c"]}, {"type": "array", "items": {"type": "number"}}]  # fmt: skip
    props = {f"field_{i}": kinds[i % len(kinds)] for i in range(properties)}
    return {"type": "object", "properties": props, "required": list(props)}


def run(model: ChatLlamaCpp, constrained: bool, max_tokens: int) -> tuple[int, float]:
    """(completion tokens, seconds) for one generation, whole prompt evaluated each time."""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0, "seed": 1}
    if constrained:
        kwargs["response_format"] = {"type": "json_schema", "schema": SCHEMA}
    start = time.perf_counter()
    message = model.invoke(PROMPT, **kwargs)
    seconds = time.perf_counter() - start
    return int(message.usage_metadata["output_tokens"]), seconds  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    model = ChatLlamaCpp(model_path=packaged_model_path(), max_tokens=args.max_tokens)
    model.load()
    rates: dict[str, list[float]] = {"plain": [], "schema": []}
    run(model, False, 8)  # warm-up
    for _ in range(args.runs):
        for name, constrained in (("plain", False), ("schema", True)):
            tokens, seconds = run(model, constrained, args.max_tokens)
            rates[name].append(tokens / seconds)
    plain, schema = statistics.median(rates["plain"]), statistics.median(rates["schema"])

    wide = json.dumps(local_output.lowered(wide_schema(50)), sort_keys=True)
    local_output.grammar_for.cache_clear()
    start = time.perf_counter()
    local_output.grammar_for(wide)
    first_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    local_output.grammar_for(wide)
    cached_ms = (time.perf_counter() - start) * 1000

    result = {
        "runs": args.runs,
        "plain_tokens_per_s": round(plain, 1),
        "schema_tokens_per_s": round(schema, 1),
        "ratio_schema_vs_plain": round(schema / plain, 3),
        "grammar_50_properties_ms": round(first_ms, 2),
        "grammar_cached_ms": round(cached_ms, 4),
    }
    print(f"unconstrained  {plain:8.1f} tokens/s (median of {args.runs})")
    print(f"JSON schema    {schema:8.1f} tokens/s   ratio {schema / plain:.2f}x")
    print(f"grammar for a 50-property schema: {first_ms:.2f} ms built, {cached_ms:.4f} ms cached")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
