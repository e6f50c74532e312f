"""A conversation as stored and as the model and the API see it: which stored messages a model is
shown, the rows as API objects, and the checks every message passes before anything is stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from app.core.errors import InvalidRequest, NotFound, PayloadTooLarge
from app.protocol.sessions import MessageOut, SessionOut, UsageOut
from app.storage.repo import MessageRow, SessionRow

#: Longest user message accepted (characters); a model entry's `max_prompt_chars` can lower it.
MAX_CONTENT_CHARS = 32_000


def conversation(rows: Sequence[MessageRow]) -> list[MessageRow]:
    """The stored messages a model should see: failed turns (no answer text) left out."""
    out: list[MessageRow] = []
    for index, row in enumerate(rows):
        if row.role == "user":
            answer = rows[index + 1] if index + 1 < len(rows) else None
            if answer is not None and answer.role == "assistant" and not answer.content:
                continue
            out.append(row)
        elif row.content:
            out.append(row)
    return out


def to_messages(rows: Sequence[MessageRow]) -> list[BaseMessage]:
    return [HumanMessage(r.content) if r.role == "user" else AIMessage(r.content) for r in rows]


def not_found(session_id: str) -> NotFound:
    return NotFound(f"No session with id {session_id!r}.", param="session_id", code="session_not_found")


def refuse_nul(value: str | None, param: str) -> None:
    """Postgres text cannot hold U+0000 (SQLite can): refuse it on both, so both databases answer alike."""
    if value is not None and "\x00" in value:
        raise InvalidRequest(
            f"'{param}' contains a NUL character (U+0000), which cannot be stored.", param=param, code="invalid_value"
        )


def known_id(session_id: str) -> str:
    """A session id as the database can look it up: one with NUL in it exists nowhere (404, as on SQLite)."""
    if "\x00" in session_id:
        raise not_found(session_id)
    return session_id


def check_content(content: str, limit: int = MAX_CONTENT_CHARS) -> str:
    """400 for an empty message or one with NUL, 413 for one over the limit: before anything is stored."""
    refuse_nul(content, "content")
    if not content.strip():
        raise InvalidRequest("The message content is empty.", param="content", code="empty_content")
    if len(content) > limit:
        raise PayloadTooLarge(
            f"The message is {len(content)} characters; the limit is {limit}.",
            param="content",
            code="content_too_long",
        )
    return content


def new_session_id() -> str:
    return uuid.uuid4().hex


def message_out(row: MessageRow) -> MessageOut:
    """A stored message as the API shows it: the row's fields, and its token counts as `usage`."""
    message = MessageOut.model_validate(row, from_attributes=True)
    if row.prompt_tokens is not None and row.completion_tokens is not None:
        total = row.prompt_tokens + row.completion_tokens
        message.usage = UsageOut(
            prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens, total_tokens=total
        )
    return message


def session_out(row: SessionRow, message_count: int = 0) -> SessionOut:
    session = SessionOut.model_validate(row, from_attributes=True)
    session.message_count = message_count
    return session
