"""Conversations belong to API key ids, not names.

A name can be given to a new key once the old one is revoked; an id cannot. Existing conversations
move from the name to the key that had it (the active one, else the newest); a static key's name
`static-<8 hex>` becomes its id `static:<8 hex>`; `anonymous` stays. Names no key ever had are left as
they are (no key can reach them). Downgrade maps ids back to names.

Revision ID: 0003_identities_by_key_id
Revises: 0002_api_keys
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_identities_by_key_id"
down_revision: str | None = "0002_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text("UPDATE chat_sessions SET identity = 'static:' || substr(identity, 8) WHERE identity LIKE 'static-%'")
    )
    op.execute(
        sa.text(
            "UPDATE chat_sessions SET identity = 'db:' || ("
            "  SELECT CAST(k.id AS VARCHAR(20)) FROM api_keys k WHERE k.name = chat_sessions.identity"
            "  ORDER BY CASE WHEN k.revoked_at IS NULL THEN 0 ELSE 1 END, k.id DESC LIMIT 1) "
            "WHERE identity <> 'anonymous' AND identity NOT LIKE 'db:%' AND identity NOT LIKE 'static:%' "
            "AND EXISTS (SELECT 1 FROM api_keys k WHERE k.name = chat_sessions.identity)"
        )
    )


def downgrade() -> None:
    op.execute(
        sa.text("UPDATE chat_sessions SET identity = 'static-' || substr(identity, 8) WHERE identity LIKE 'static:%'")
    )
    op.execute(
        sa.text(
            "UPDATE chat_sessions SET identity = ("
            "  SELECT k.name FROM api_keys k WHERE 'db:' || CAST(k.id AS VARCHAR(20)) = chat_sessions.identity) "
            "WHERE identity LIKE 'db:%' AND EXISTS ("
            "  SELECT 1 FROM api_keys k WHERE 'db:' || CAST(k.id AS VARCHAR(20)) = chat_sessions.identity)"
        )
    )
