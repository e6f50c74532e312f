"""The native chat API's shapes (`/api/sessions`): what it takes and what it returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.core.sampling import Temperature

#: A conversation's stored max_tokens: bounded (a database INTEGER holds 2**31 - 1; no model answers
#: a million tokens), so an absurd value is a 400, never the database's overflow.
SessionMaxTokens = Annotated[int | None, Field(default=None, ge=1, le=1_000_000)]


class SessionCreate(BaseModel):
    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="A model entry; default: the server's."
    )
    system_prompt: str | None = Field(default=None, description="Replaces the model entry's system prompt.")
    title: str | None = Field(default=None, max_length=200)
    temperature: Temperature = Field(default=None, description="For every turn; default: the model entry's.")
    max_tokens: SessionMaxTokens = Field(
        default=None, description="Longest answer per turn; default: the model entry's."
    )


class SessionUpdate(BaseModel):
    """Rename a conversation, change its system prompt or its sampling; fields left out stay as they
    are, and `null` puts the model entry's default back (temperature, max_tokens, system_prompt)."""

    model_config = {"extra": "forbid"}

    title: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, description="Replaces the system prompt for the next turns.")
    temperature: Temperature = Field(default=None, description="For the next turns; null: the model entry's.")
    max_tokens: SessionMaxTokens = Field(
        default=None, description="Longest answer of the next turns; null: the model entry's."
    )


class MessageCreate(BaseModel):
    content: str = Field(description="The user's message.")


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class MessageOut(BaseModel):
    id: int
    object: Literal["session.message"] = "session.message"
    session_id: str
    role: Literal["user", "assistant"]
    content: str
    status: Literal["complete", "incomplete"] = Field(
        description="`incomplete`: generation failed, was cancelled or the client left; `content` is what was generated."
    )
    reply_to: int | None = Field(default=None, description="Assistant messages: the user message answered.")
    model: str | None = Field(default=None, description="The model that answered (after any fallback).")
    usage: UsageOut | None = None
    latency_ms: int | None = Field(default=None, description="From the start of generation to its end.")
    finish_reason: str | None = None
    error: str | None = Field(default=None, description="Why an answer is incomplete (an error code).")
    created_at: datetime


class SessionOut(BaseModel):
    id: str
    object: Literal["session"] = "session"
    title: str | None
    model: str | None = Field(description="The model entry used; null = the server's default model.")
    system_prompt: str | None
    temperature: float | None = Field(default=None, description="null: the model entry's default.")
    max_tokens: int | None = Field(default=None, description="null: the model entry's default.")
    created_at: datetime
    updated_at: datetime = Field(description="Last activity.")
    message_count: int = 0


class SessionDetail(SessionOut):
    messages: list[MessageOut]


class SessionPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionOut]
    first_id: str | None
    last_id: str | None = Field(description="Pass as `after` for the next page.")
    has_more: bool


class SessionDeleted(BaseModel):
    id: str
    object: Literal["session.deleted"] = "session.deleted"
    deleted: bool = True
