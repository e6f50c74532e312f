"""What one request did (model, tokens, time to first token, time waiting on the model), filled in by
generation wherever it ran, read by the access log, the overhead header and histogram, and the
request's span."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class RequestRecord:
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    queue_wait_s: float | None = None
    #: Time spent waiting on the model's stream (for its next piece), over every generation of the request.
    upstream_s: float = 0.0

    def waiting_s(self) -> float:
        """Time the request spent waiting for the model: its queue slot and its stream."""
        return self.upstream_s + (self.queue_wait_s or 0.0)


RECORD: ContextVar[RequestRecord | None] = ContextVar("slipway_request_record", default=None)
