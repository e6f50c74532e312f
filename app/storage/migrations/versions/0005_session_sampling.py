"""Per-conversation sampling: a session's temperature and max_tokens (NULL = the model entry's).

Revision ID: 0005_session_sampling
Revises: 0004_responses
Create Date: 2026-12-03

Two nullable columns: a replica still on 0004's code reads and writes sessions as before (it never
names them), so a rolling upgrade needs no downtime.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_session_sampling"
down_revision: str | None = "0004_responses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chat_sessions", sa.Column("temperature", sa.Float(), nullable=True))
    op.add_column("chat_sessions", sa.Column("max_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_column("max_tokens")
        batch.drop_column("temperature")
