"""What a generation yields: text deltas, then one `Finished` (or `StreamStarted` after a failure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.errors import APIError


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class Delta:
    text: str
    model: str
    #: Tool-call fragments (OpenAI's streamed format, see `Piece.tool_calls`), when the model calls tools.
    tool_calls: list[dict[str, Any]] | None = None
    #: Log probabilities of this delta's tokens (OpenAI's `logprobs.content` entries), when asked for.
    logprobs: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class Finished:
    finish_reason: str
    usage: Usage
    model: str
    fallback_from: str | None = None


Event = Delta | Finished


class StreamStarted(Exception):
    """A failure after the first token: no retry, no fallback; the stream ends with an error."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.message)
        self.error = error
