"""`python -m app keys ...`: create, list and revoke API keys (joined to the main CLI automatically).

python -m app keys create --name alice --rpm 60 --tpm 20000   # prints the key once
python -m app keys list [--json]
python -m app keys revoke alice
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console

from app.auth.keys import ANONYMOUS, STATIC_PREFIX
from app.core.config import Settings

cli = typer.Typer(name="keys", help="API keys: create, list, revoke.", no_args_is_help=True)
err = Console(stderr=True)
T = TypeVar("T")


def _settings(ctx: typer.Context) -> Settings:
    overrides: dict[str, Any] = {}
    root = ctx.find_root().obj or {}
    if isinstance(root, dict) and root.get("config") is not None:
        overrides["config"] = root["config"]
    return Settings(**overrides)


def _run(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(connection)` in one transaction on the configured database.

    The schema is brought to the newest migration first, as the service does at start-up, so
    `keys create` works on a fresh machine before the service has ever run.
    """
    from app.storage import migrate
    from app.storage.db import describe, is_outage, make_engine
    from app.storage.tables import api_keys

    async def main() -> T:
        engine = make_engine(settings)
        try:
            if settings.migrate_on_start:
                await migrate.upgrade(engine)
            async with engine.begin() as conn:
                exists = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, api_keys.name))
                if not exists:
                    err.print(
                        "[bold red]error:[/] the database has no api_keys table yet: "
                        "run `python -m app db upgrade` (or start the service once) first"
                    )
                    raise typer.Exit(1)
                return await work(conn)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except Exception as exc:
        if is_outage(exc):
            err.print(f"[bold red]error:[/] cannot reach the database ({describe(exc)})", highlight=False)
            raise typer.Exit(1) from None
        raise


@cli.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who the key is for; shown in logs and metrics.")],
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute (default: none).")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens per minute (default: none).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from app.storage.api_keys import KeyNameTaken, create_key
    from app.storage.api_keys import list_keys as load

    name = name.strip()
    if not name:
        raise typer.BadParameter("the name must not be empty", param_hint="--name")
    if name.lower() == ANONYMOUS.name or name.lower().startswith(STATIC_PREFIX):
        # `anonymous` owns what was made without any key and `static-...` names the keys from
        # SLIPWAY_API_KEYS: a database key takes neither name, so logs never confuse them.
        raise typer.BadParameter(
            f"{name!r} is reserved: '{ANONYMOUS.name}' owns what was created while no key existed and "
            f"'{STATIC_PREFIX}...' names the keys from SLIPWAY_API_KEYS",
            param_hint="--name",
        )
    try:
        key, record = _run(_settings(ctx), lambda conn: create_key(conn, name=name, rpm=rpm, tpm=tpm))
    except KeyNameTaken as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if json_out:
        sys.stdout.write(orjson.dumps({"key": key, **record.as_dict()}).decode() + "\n")
        return
    sys.stdout.write(key + "\n")
    err.print(f"Key [bold]{record.name}[/] created. It is shown only this once: store it now.")
    if len(_run(_settings(ctx), load)) == 1:
        err.print(
            "This is the first key: auth is now on. A running service picks it up within seconds and then "
            "refuses requests without a key (the web page asks for one). Conversations made before stay "
            f"with the {ANONYMOUS.name!r} identity, which no key can take."
        )


@cli.command("list")
def list_keys(
    ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False
) -> None:
    """List keys (name, prefix, limits, state); never the keys themselves."""
    from app.storage.api_keys import list_keys as load

    records = _run(_settings(ctx), load)
    if json_out:
        sys.stdout.write(orjson.dumps([r.as_dict() for r in records]).decode() + "\n")
        return
    from rich.table import Table

    table = Table("name", "prefix", "rpm", "tpm", "created", "state")
    for r in records:
        state = "active" if r.active else f"revoked {r.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(
            r.name, r.prefix + "...", str(r.rpm or "-"), str(r.tpm or "-"), f"{r.created_at:%Y-%m-%d %H:%M}", state
        )
    Console().print(table)


@cli.command("revoke")
def revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke the active key with this name (running services stop accepting it within seconds)."""
    from app.storage.api_keys import revoke_key

    if not _run(_settings(ctx), lambda conn: revoke_key(conn, name=name)):
        err.print(f"[bold red]error:[/] no active key named {name!r}")
        raise typer.Exit(1)
    err.print(f"Key [bold]{name}[/] revoked.")


@cli.command("rotate")
def rotate(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Replace the active key with this name by a new one (printed once); its conversations move to the
    new key and the old one stops working (within seconds on running services)."""
    from app.storage.api_keys import rotate_key

    try:
        key, record, moved = _run(_settings(ctx), lambda conn: rotate_key(conn, name=name))
    except KeyError:
        err.print(f"[bold red]error:[/] no active key named {name!r}")
        raise typer.Exit(1) from None
    sys.stdout.write(key + "\n")
    err.print(
        f"Key [bold]{record.name}[/] rotated: {moved} conversations moved to the new key; the old key is revoked."
    )
