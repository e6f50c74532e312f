"""What a generation yields: text deltas, then one `Finished` (or `StreamStarted` after a failure)."""

from __future__ import annotations

from dataclasses import dataclass

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
