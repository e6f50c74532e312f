"""An LLM judge: each answer graded 1-5 on a rubric, with a one-sentence rationale.

Why: n-gram metrics punish a correct answer worded differently (the packaged model answers at length,
so its BLEU is low whatever its correctness). A judge reads the answer against the reference, and
against the case's context for QA cases (faithfulness: a claim the context does not support lowers
the grade).

The grade always parses: the judge is asked for JSON in a schema (`GRADE_SCHEMA`) through the
structured output each provider has (llama.cpp's grammar for the embedded model, Ollama's `format`,
Gemini's `responseSchema`, OpenAI's `json_schema`, Slipway's `response_format`); what comes back is
still validated, and a reply that does not validate is asked again (up to `ATTEMPTS` times) before
the case is marked as not judged. The rationale is bounded (240 characters, which llama.cpp's grammar
enforces) and the reply has room for it (256 tokens): an unbounded one once ran past the token limit
and left the JSON unclosed. Grades are cached like answers (the judge, the rubric's version,
the messages), so a re-run costs nothing.

A tiny judge (the embedded 135M model) is a smoke test of the wiring, not a measurement: its grades
barely follow the rubric. Use a large model (Llama 3.1 8B and up, Gemini Flash) for real use.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import jsonschema
import numpy as np

from eval.cache import ResponseCache
from eval.targets import make_target

#: Bumped whenever the rubric's wording changes, so cached grades of an older rubric are not reused.
RUBRIC_VERSION = 1
ATTEMPTS = 3
GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "rationale": {"type": "string", "minLength": 1, "maxLength": 240},
    },
    "required": ["score", "rationale"],
    "additionalProperties": False,
}
RUBRIC = """You grade one answer to a question. Compare the ANSWER with the REFERENCE answer{context}.
Grade 1 to 5:
5 - correct and complete: says what the reference says (wording may differ);
4 - correct with a small omission or a harmless extra;
3 - partly correct: some of the reference, or correct but padded with doubtful claims;
2 - mostly wrong or missing the point;
1 - wrong, irrelevant, or empty.{faithful}
Reply with JSON only: {{"score": <1-5>, "rationale": "<one sentence saying why>"}}."""
FAITHFUL = (
    "\nThe answer must also be faithful to the CONTEXT: a claim the context does not support lowers the "
    "grade, even when it is true elsewhere."
)


def judge_messages(prompt: str, references: Sequence[str], answer: str, context: str | None) -> list[dict[str, str]]:
    system = RUBRIC.format(
        context=" and with the CONTEXT it had to rely on" if context else "",
        faithful=FAITHFUL if context else "",
    )
    parts = [f"QUESTION:\n{prompt}"]
    if context:
        parts.append(f"CONTEXT:\n{context}")
    parts.append("REFERENCE:\n" + "\n".join(references))
    parts.append(f"ANSWER:\n{answer}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def parse_grade(text: str) -> dict[str, Any]:
    """The grade from a reply, or ValueError: JSON in the schema (a fenced block is tolerated)."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise ValueError(f"no JSON object in the judge's reply: {text[:120]!r}")
    try:
        grade = json.loads(body[start : end + 1])
        jsonschema.validate(grade, GRADE_SCHEMA)
    except (ValueError, jsonschema.ValidationError) as exc:
        raise ValueError(f"the judge's reply is not a grade ({str(exc).splitlines()[0]}): {text[:120]!r}") from None
    return {"score": int(grade["score"]), "rationale": grade["rationale"].strip()}


class Judge:
    """Grades answers with one model of any target the harness knows (local, ollama:, gemini:, openai:, URL)."""

    def __init__(
        self,
        target: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        cache: ResponseCache | None = None,
        max_tokens: int = 256,
    ) -> None:
        self.params = {"temperature": 0.0, "max_tokens": max_tokens, "seed": 0}
        self.target = make_target(target, model, None, api_key, self.params)
        self.name = f"{target}" + (f" ({self.target.model})" if self.target.model else "")
        self.cache = cache
        # The embedded model generates one answer at a time; remote judges take a few at once.
        self.concurrency = 1 if target == "local" else 4

    async def grade(self, prompt: str, references: Sequence[str], answer: str, context: str | None) -> dict[str, Any]:
        messages = judge_messages(prompt, references, answer, context)
        key = ResponseCache.key(
            kind="judge",
            rubric=RUBRIC_VERSION,
            target=getattr(self.target, "identity", self.target.name),
            model=self.target.model,
            params=self.params,
            messages=messages,
        )
        hit = self.cache.get(key) if self.cache else None
        if hit is not None:
            return {**hit, "cached": True}
        problem = ""
        for attempt in range(ATTEMPTS):
            params = {**self.params, "seed": attempt}  # a different draw when a reply did not parse
            reply = await self.target.answer(messages, params, None, json_schema=GRADE_SCHEMA)
            try:
                grade = parse_grade(reply.text)
            except ValueError as exc:
                problem = str(exc)
                continue
            grade["attempts"] = attempt + 1
            if self.cache:
                self.cache.put(key, grade)
            return {**grade, "cached": False}
        raise ValueError(f"no valid grade after {ATTEMPTS} attempts: {problem}")

    async def grade_rows(
        self, rows: list[dict[str, Any]], contexts: dict[str, str | None], progress: Callable[[], None] | None = None
    ) -> None:
        """Add `judge` ({score, rationale, cached} or {error}) to every answered row, in place."""
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(row: dict[str, Any]) -> None:
            async with semaphore:
                try:
                    row["judge"] = await self.grade(
                        row.get("prompt", ""), row["references"], row["prediction"], contexts.get(row["id"])
                    )
                except Exception as exc:  # a case the judge could not grade is reported, not fatal
                    row["judge"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            if progress:
                progress()

        await asyncio.gather(*(one(r) for r in rows if r.get("error") is None))


def summarise_grades(rows: list[dict[str, Any]], *, resamples: int, seed: int, judge: str) -> dict[str, Any] | None:
    """The mean grade (1-5) with a seeded percentile bootstrap interval, over the graded cases."""
    scores = np.array([r["judge"]["score"] for r in rows if "score" in (r.get("judge") or {})], dtype=float)
    if not scores.size:
        return None
    idx = np.random.default_rng(seed).integers(0, scores.size, size=(resamples, scores.size))
    means = scores[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    failed = sum(1 for r in rows if "error" in (r.get("judge") or {}))
    return {
        "value": float(scores.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "graded": int(scores.size),
        "not_graded": failed,
        "judge": judge,
    }
