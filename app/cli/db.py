"""`python -m app db ...`: the schema (joined to the main CLI automatically).

python -m app db upgrade          # apply every migration (what start-up does unless SLIPWAY_MIGRATE_ON_START=false)
python -m app db current          # the revision the database is at, and the newest one
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.console import Console

from app.core.config import Settings

cli = typer.Typer(name="db", help="Database schema: upgrade, current.", no_args_is_help=True)
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


@cli.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (default: the newest)."""
    from app.storage import migrate
    from app.storage.db import describe, is_outage, make_engine

    settings = Settings()

    async def main() -> tuple[str | None, str | None]:
        engine = make_engine(settings)
        try:
            async with asyncio.timeout(max(60.0, settings.db_timeout_s * 10)):
                return await migrate.upgrade(engine, revision)
        finally:
            await engine.dispose()

    try:
        before, after = asyncio.run(main())
    except Exception as exc:
        if is_outage(exc):
            _fail(f"cannot reach the database ({describe(exc)})")
        raise
    if before == after:
        sys.stdout.write(f"database already at {after}\n")
    else:
        sys.stdout.write(f"database upgraded: {before or 'empty'} -> {after}\n")


@cli.command("current")
def current_command() -> None:
    """Print the database's revision and the newest one."""
    from app.storage import migrate
    from app.storage.db import describe, is_outage, make_engine

    settings = Settings()

    async def main() -> str | None:
        engine = make_engine(settings)
        try:
            async with asyncio.timeout(settings.db_timeout_s * 2):
                return await migrate.current(engine)
        finally:
            await engine.dispose()

    try:
        now = asyncio.run(main())
    except Exception as exc:
        if is_outage(exc):
            _fail(f"cannot reach the database ({describe(exc)})")
        raise
    head = migrate.head_revision()
    sys.stdout.write(f"current: {now or 'empty'}\nhead:    {head}\n")
    if now != head:
        raise typer.Exit(3)
