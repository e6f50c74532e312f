"""What `generate()` reports while it works, as typed methods: metrics, the request's record, and the
key's token ledger for rate limits. Each is a few attribute updates: no I/O."""

from __future__ import annotations

from app.core.errors import APIError
from app.limits.ledger import record_tokens
from app.observability.context import RECORD
from app.observability.metrics import Metrics
from app.services.events import Finished


class GenerationHooks:
    """The reports, doing nothing: what a generation outside the service (the chat CLI, a unit
    test) gets."""

    def slot(self, model: str, waited_s: float) -> None:
        """A queue slot was granted after `waited_s`."""

    def first_token(self, model: str, seconds: float) -> None:
        """The first token, `seconds` after `generate()` was called."""

    def waited(self, model: str, seconds: float) -> None:
        """`seconds` were spent waiting for the model's next piece (or its end)."""

    def finished(self, finished: Finished, *, empty: bool = False) -> None:
        """The generation ended (or was cut short: then usage is estimated, reason `cancelled`);
        `empty`: not one piece of content came before the end."""

    def error(self, model: str, error: APIError) -> None:
        """An attempt failed (it may still be retried or fall back)."""

    def retry(self, model: str) -> None:
        """An attempt is retried on the same model."""

    def fallback(self, primary: str, fallback: str) -> None:
        """The primary model failed; the next fallback is tried."""


class ObservedHooks(GenerationHooks):
    """The service's hooks: Prometheus metrics, the access log's request record, the token ledger."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def slot(self, model: str, waited_s: float) -> None:
        self.metrics.queue_wait.labels(model).observe(waited_s)
        record = RECORD.get()
        if record is not None:
            record.queue_wait_s = (record.queue_wait_s or 0.0) + waited_s

    def waited(self, model: str, seconds: float) -> None:
        record = RECORD.get()
        if record is not None:
            record.upstream_s += seconds

    def first_token(self, model: str, seconds: float) -> None:
        self.metrics.ttft.labels(model).observe(seconds)
        record = RECORD.get()
        if record is not None and record.ttft_s is None:
            record.ttft_s = seconds

    def finished(self, finished: Finished, *, empty: bool = False) -> None:
        usage = finished.usage
        m = self.metrics
        m.tokens.labels(finished.model, "prompt").inc(usage.prompt_tokens)
        m.tokens.labels(finished.model, "completion").inc(usage.completion_tokens)
        m.answers.labels(finished.model, finished.finish_reason).inc()
        m.answer_tokens.labels(finished.model).observe(usage.completion_tokens)
        if empty:
            m.empty_answers.labels(finished.model).inc()
        record_tokens(usage.total_tokens)
        record = RECORD.get()
        if record is not None:
            record.model = finished.model
            record.prompt_tokens += usage.prompt_tokens
            record.completion_tokens += usage.completion_tokens

    def error(self, model: str, error: APIError) -> None:
        if error.code == "model_overloaded":
            self.metrics.queue_rejections.labels(model).inc()
        elif error.code != "shutting_down":
            self.metrics.provider_errors.labels(model, error.code or error.type).inc()

    def retry(self, model: str) -> None:
        self.metrics.retries.labels(model).inc()

    def fallback(self, primary: str, fallback: str) -> None:
        self.metrics.fallbacks.labels(primary, fallback).inc()
