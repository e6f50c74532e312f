"""The callbacks `generate()` calls (`registry.generation_hooks`): metrics, the request's record, and
the key's token ledger for rate limits. Each is a few attribute updates: no I/O."""

from __future__ import annotations

from typing import Any

from app.core.errors import APIError
from app.limits.ledger import record_tokens
from app.observability.context import RECORD
from app.observability.metrics import Metrics
from app.services.generation import Finished


def generation_hooks(metrics: Metrics) -> dict[str, Any]:
    def on_slot(model: str, waited_s: float) -> None:
        metrics.queue_wait.labels(model).observe(waited_s)
        record = RECORD.get()
        if record is not None:
            record.queue_wait_s = waited_s

    def on_first_token(model: str, seconds: float) -> None:
        metrics.ttft.labels(model).observe(seconds)
        record = RECORD.get()
        if record is not None and record.ttft_s is None:
            record.ttft_s = seconds

    def on_finish(finished: Finished) -> None:
        usage = finished.usage
        metrics.tokens.labels(finished.model, "prompt").inc(usage.prompt_tokens)
        metrics.tokens.labels(finished.model, "completion").inc(usage.completion_tokens)
        record_tokens(usage.total_tokens)
        record = RECORD.get()
        if record is not None:
            record.model = finished.model
            record.prompt_tokens += usage.prompt_tokens
            record.completion_tokens += usage.completion_tokens

    def on_error(model: str, error: APIError) -> None:
        if error.code == "model_overloaded":
            metrics.queue_rejections.labels(model).inc()
        elif error.code != "shutting_down":
            metrics.provider_errors.labels(model, error.code or error.type).inc()

    def on_retry(model: str) -> None:
        metrics.retries.labels(model).inc()

    def on_fallback(primary: str, fallback: str) -> None:
        metrics.fallbacks.labels(primary, fallback).inc()

    return {
        "on_slot": on_slot,
        "on_first_token": on_first_token,
        "on_finish": on_finish,
        "on_error": on_error,
        "on_retry": on_retry,
        "on_fallback": on_fallback,
    }
