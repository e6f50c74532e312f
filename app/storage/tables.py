"""Every table of the service: conversations, stored Responses and API keys. The schema itself is created by the Alembic migrations in `migrations/`;
these objects are what queries are written against (a test checks the two never drift apart).

Why Core tables rather than ORM classes: every write is one explicit transaction of a few statements,
and the rows go straight into response models, so an identity map and lazy loading would only add
ways to issue queries nobody sees.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

#: Constraint names fixed by convention, so migrations name them the same on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

#: SQLite only auto-increments an INTEGER PRIMARY KEY; Postgres gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

chat_sessions = Table(
    "chat_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    #: Who owns it: the API key's id (`db:<n>`, `static:<hash>`), or "anonymous" while no keys exist.
    #: Every query filters on it.
    Column("identity", String(200), nullable=False),
    Column("title", String(200), nullable=True),
    #: The model entry asked for at creation; NULL = the server's default model at each turn.
    Column("model", String(200), nullable=True),
    Column("system_prompt", Text, nullable=True),
    #: Per-conversation sampling (the web page's settings); NULL = the model entry's default.
    Column("temperature", Float, nullable=True),
    Column("max_tokens", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: Last activity (creation or a stored message): retention and "most recently used" go by it.
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_chat_sessions_identity_created", "identity", "created_at"),
    Index("ix_chat_sessions_identity_updated", "identity", "updated_at"),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
    #: Position in the conversation (1, 2, ...). Unique per session: even if two writers ever raced,
    #: the database would refuse to give two messages the same place.
    Column("seq", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    #: complete | incomplete (generation failed, was cancelled, or the client left mid-answer).
    Column("status", String(16), nullable=False),
    #: Assistant messages: the user message they answer.
    Column("reply_to", BigId, nullable=True),
    Column("model", String(200), nullable=True),
    Column("prompt_tokens", Integer, nullable=True),
    Column("completion_tokens", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("finish_reason", String(32), nullable=True),
    #: Why an answer is incomplete: the error code (`timeout`, `client_disconnected`, ...).
    Column("error", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("session_id", "seq", name="uq_chat_messages_session_seq"),
)


#: Responses API objects kept with `store: true` (`app.storage.responses`): what `GET /v1/responses/{id}`
#: returns and what `previous_response_id` continues from. Each row holds its own request's input
#: items and its output; a continued conversation is the chain of rows followed back.
responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    #: The caller's identity, as for conversations: every query filters on it.
    Column("identity", String(200), nullable=False),
    Column("previous_response_id", String(64), nullable=True),
    Column("model", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    #: The response object as returned (JSON text).
    Column("body", Text, nullable=False),
    #: This request's input items, with their ids (JSON text), for `input_items` and continuation.
    Column("input_items", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_responses_identity_created", "identity", "created_at"),
)


#: The API keys (`app.storage.api_keys`). Only the SHA-256 of a key is stored. Its own MetaData (no
#: naming convention) because migration 0002 created it so, and names must match the database's.
keys_metadata = MetaData()

api_keys = Table(
    "api_keys",
    keys_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index(
        "ux_api_keys_active_name",
        "name",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

#: What the migrations own (`migrations/env.py`).
ALL_METADATA = [metadata, keys_metadata]
