"""What every chain's input is built from: a pydantic model whose JSON schema `GET /v1/chains` publishes.

Why pydantic models rather than the prompts' own variables: a model gives each field a type, a
description and a default, so the schema a client reads is exactly the validation the chain applies,
whether it is called over HTTP or from a notebook.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel, ConfigDict


class ChainInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HistoryMessage(BaseModel):
    """One earlier turn of a conversation, in OpenAI's role names."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


def validated(model: type[ChainInput]) -> RunnableLambda:
    """A chain's first step: the input checked against its model, defaults filled in."""

    def check(value: Any) -> dict[str, Any]:
        if isinstance(value, model):
            return value.model_dump(by_alias=True)
        return model.model_validate(value).model_dump(by_alias=True)

    return RunnableLambda(check, name=f"validate_{model.__name__}")
