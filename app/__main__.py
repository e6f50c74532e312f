"""`python -m app` / `slipway`: serve (the default), plus operator commands.

python -m app                      # serve on 127.0.0.1:8000 with the packaged model
python -m app --host 0.0.0.0 --port 8080 --config models.yaml
python -m app --workers 2          # two processes (with Postgres, Redis and remote models only)
python -m app models               # what the models file serves
python -m app db upgrade           # apply migrations
python -m app keys create --name tester
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from app.cli.db import cli as db_cli
from app.cli.keys import cli as keys_cli
from app.core.config import Settings
from app.core.models_file import ModelsFile, ModelsFileError, ModelSpec, load_models_file

if TYPE_CHECKING:
    import uvicorn

cli = typer.Typer(
    name="slipway",
    help="Slipway: an OpenAI-compatible chat service. With no command, serves.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's own help: typer 0.29's rich help on click 8.5 labels flags `<bool>` ("--help <bool>").
    rich_markup_mode=None,
)
err = Console(stderr=True)

HostOpt = Annotated[str | None, typer.Option("--host", help="Bind address (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port (default 8000).")]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, help="Processes sharing the port (only with Postgres, Redis, remote models)."),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Models file (YAML). Default: $SLIPWAY_CONFIG or the packaged model.")
]


def load_settings(config: Path | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        values["config"] = config
    return Settings(**values)  # type: ignore[arg-type]  # validated by pydantic-settings


def read_models_file(settings: Settings) -> ModelsFile:
    """The models file, checked against the providers Slipway has; a wrong one ends the command with
    the file's problems (exit 2), never a traceback."""
    from app.providers.registry import PROVIDERS

    try:
        return load_models_file(settings.config, PROVIDERS)
    except ModelsFileError as exc:
        fail(str(exc))


def fail(message: str, code: int = 2) -> NoReturn:
    # soft_wrap: no line breaks inserted mid-sentence (the terminal wraps; a copied message stays whole)
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def check_local_paths(models_file: ModelsFile, source: Path | None) -> None:
    """A local entry whose GGUF is missing stops start-up (it used to start and log one error)."""
    for spec in models_file.models:
        if spec.provider == "local" and spec.path is not None and not Path(spec.path).expanduser().is_file():
            fail(f"{source or 'models file'}: model {spec.name!r}: `path` {spec.path} is not a file")


def check_port_free(host: str, port: int) -> None:
    """One human line and exit 2 when the port is taken, before migrations or model loading start."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is fine
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is already in use (another Slipway?): stop it or choose --port")
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def auth_enabled_at_start(settings: Settings) -> bool:
    """API-key auth is on as soon as any key exists, in the settings or in the database."""
    if settings.api_keys:
        return True
    from app.storage.api_keys import database_has_keys

    return database_has_keys(settings)


def check_bind(settings: Settings, auth_on: bool) -> None:
    """A public bind without auth is an open model for anyone: refuse unless asked for on purpose."""
    if not settings.is_loopback_bind and not auth_on and not settings.allow_no_auth:
        fail(
            f"refusing to listen on {settings.host} without API keys: anyone who can reach it could use "
            "the models. Create a key (`python -m app keys create --name NAME`), set SLIPWAY_API_KEYS, "
            "or set SLIPWAY_ALLOW_NO_AUTH=true if this is really what you want."
        )


@cli.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    host: HostOpt = None,
    port: PortOpt = None,
    config: ConfigOpt = None,
    workers: WorkersOpt = None,
    tunnel: Annotated[bool, typer.Option("--tunnel", help="Also open an ngrok tunnel for testers.")] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"config": config}
        return
    serve(host=host, port=port, config=config, workers=workers, tunnel=tunnel)


@cli.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    config: ConfigOpt = None,
    workers: WorkersOpt = None,
    tunnel: Annotated[bool, typer.Option("--tunnel", help="Also open an ngrok tunnel for testers.")] = False,
) -> None:
    """Serve the API (the default command)."""
    import uvicorn

    from app.cli.workers import Supervisor, metrics_directory, single_process_reasons
    from app.core.logging import configure_logging

    settings = load_settings(config, host=host, port=port, workers=workers)
    models_file = read_models_file(settings)
    check_local_paths(models_file, settings.config)
    configure_logging(settings.log_level, settings.log_json)
    from app.main import create_app
    from app.tunnel import Tunnel, TunnelRefused, open_tunnel

    auth_on = auth_enabled_at_start(settings)
    check_bind(settings, auth_on)
    check_port_free(settings.host, settings.port)
    opened: Tunnel | None = None
    if tunnel:
        try:
            opened = open_tunnel(settings, auth_on)
        except TunnelRefused as exc:
            fail(str(exc))
            return
    reasons = single_process_reasons(settings, models_file, tunnel=opened is not None) if settings.workers > 1 else []
    if reasons:
        logging.getLogger("app.workers").warning(
            "serving with one process, not %d: %s", settings.workers, "; ".join(reasons)
        )
        settings = settings.model_copy(update={"workers": 1})
    if settings.workers == 1:
        server = uvicorn.Server(server_config(create_app(settings, models_file, tunnel=opened), settings))
        server.run()
        if not server.started:
            raise typer.Exit(3)  # as uvicorn.run: the app did not start
        return
    metrics_dir = metrics_directory()
    sock = server_config(None, settings).bind_socket()

    def run_worker(sock: socket.socket) -> int:
        server = uvicorn.Server(server_config(create_app(settings, models_file), settings))
        server.run(sockets=[sock])
        return 0 if server.started else 1

    raise typer.Exit(Supervisor(settings.workers, sock, run_worker, metrics_dir).serve())


def server_config(app: object, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings for Slipway: the guarded HTTP protocol, the grace period, proxy headers."""
    import uvicorn

    from app.api.connections import ConnectionLimits, guarded_protocol

    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections_per_client=settings.per_worker(settings.max_connections_per_client),
    )
    return uvicorn.Config(
        app,  # type: ignore[arg-type]  # None only for the parent of workers, which binds and never serves
        http=guarded_protocol(limits),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        proxy_headers=True,
        ws_max_size=settings.max_body_bytes,  # a WebSocket frame is bounded like a request body
    )


@cli.command("models")
def list_models(
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List the models the models file serves."""
    settings = load_settings(config)
    models_file = read_models_file(settings)
    if json_out:
        import orjson

        sys.stdout.write(orjson.dumps(models_file.model_dump(mode="json")).decode() + "\n")
        return
    from rich.table import Table

    table = Table("name", "provider", "model", "fallbacks", "state")
    for spec in models_file.models:
        table.add_row(
            spec.name + (" (default)" if spec.name == models_file.default_model else ""),
            spec.provider,
            spec.upstream_model,
            ", ".join(spec.fallbacks),
            entry_state(spec, settings),
        )
    Console().print(table)


def entry_state(spec: ModelSpec, settings: Settings) -> str:
    """What can be told without reaching the model: the GGUF is there, the key variable is set."""
    from app.providers.registry import PROVIDERS

    return PROVIDERS.get(spec.provider).setup_state(spec, settings)


@cli.command("chat")
def chat_cmd(
    config: ConfigOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="A models-file entry (default: the default model).")
    ] = None,
) -> None:
    """Chat with a model in the terminal (in-process; the embedded model by default)."""
    import asyncio

    from app.cli.chat import chat
    from app.core.errors import APIError

    settings = load_settings(config)
    models_file = read_models_file(settings)
    try:
        code = asyncio.run(chat(settings, models_file, model))
    except APIError as exc:
        fail(exc.message)
        return
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


cli.add_typer(db_cli)
cli.add_typer(keys_cli)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
