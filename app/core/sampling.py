"""The sampling parameters, declared once: names, types and bounds (OpenAI's) shared by the models
file's defaults, chat completions, chains and `generate()`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Temperature = Annotated[float | None, Field(default=None, ge=0, le=2)]
TopP = Annotated[float | None, Field(default=None, gt=0, le=1)]
MaxTokens = Annotated[int | None, Field(default=None, ge=1)]
Seed = int | None
MAX_STOP_SEQUENCES = 4
Stop = Annotated[list[str] | None, Field(default=None, max_length=MAX_STOP_SEQUENCES)]

#: The generic parameters every provider maps to its own names (`Provider.call_kwargs`).
NAMES = ("temperature", "top_p", "max_tokens", "stop", "seed")


class Sampling(BaseModel):
    """Sampling parameters; None = not set here (the next level's default applies)."""

    model_config = ConfigDict(extra="forbid")

    temperature: Temperature = None
    top_p: TopP = None
    max_tokens: MaxTokens = None
    seed: Seed = None
    stop: Stop = None

    def over(self, defaults: Sampling) -> dict[str, Any]:
        """These values over `defaults`, leaving out what neither sets."""
        out = {}
        for key in NAMES:
            value = getattr(self, key)
            out[key] = value if value is not None else getattr(defaults, key)
        return {k: v for k, v in out.items() if v is not None}
