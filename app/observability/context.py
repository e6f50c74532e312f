"""What one request did (model, tokens, time to first token), filled in by generation hooks wherever
the generation ran, read by the access log and the request's span when the response ends."""

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


RECORD: ContextVar[RequestRecord | None] = ContextVar("slipway_request_record", default=None)
