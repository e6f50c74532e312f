"""The chains API's shapes (`/v1/chains`): what invoke, batch and stream take."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.core.sampling import Sampling

#: Inputs per batch call.
MAX_BATCH = 32


class ChainParams(Sampling):
    """Generation parameters over the model entry's defaults (as in a chat completion)."""


class ChainRequest(BaseModel):
    input: dict[str, Any] = Field(description="The chain's input; see its `input_schema` in GET /v1/chains.")
    model: str | None = Field(default=None, description="A name from GET /v1/models; default: the first.")
    params: ChainParams | None = None


class ChainBatchRequest(BaseModel):
    inputs: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)
    model: str | None = None
    params: ChainParams | None = None


class ChainStreamRequest(ChainRequest):
    """`stream_log` / `stream_events`: LangServe's filters (names, run types, tags) beside the input."""

    include_names: list[str] | None = None
    include_types: list[str] | None = None
    include_tags: list[str] | None = None
    exclude_names: list[str] | None = None
    exclude_types: list[str] | None = None
    exclude_tags: list[str] | None = None
    diff: bool | None = Field(default=None, description="stream_log: only patches (true) are sent.")
