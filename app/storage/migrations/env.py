"""Alembic environment. Slipway passes its own connection (`app.storage.migrate`); the plain
`alembic` command (for writing new migrations) gets one from the service settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from app.storage.tables import ALL_METADATA

config = context.config


def target_metadata() -> list:
    """Every table the migrations own: the conversations and the API keys (`app.storage.tables`)."""
    return ALL_METADATA


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    from app.core.config import get_settings
    from app.storage.db import make_engine

    engine = make_engine(get_settings())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    from app.core.config import get_settings

    context.configure(url=get_settings().database_url, target_metadata=target_metadata(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run_on(shared)
else:
    asyncio.run(run_from_settings())
