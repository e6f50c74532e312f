"""The one settings object. No other module reads the environment.

Why one object: every knob is typed, documented here, and overridable by `SLIPWAY_*` variables or a
`.env` file, so a deployment is described by its environment alone (12-factor), and tests build a
`Settings(...)` directly instead of patching globals.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings; every field maps to `SLIPWAY_<FIELD>` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Serving
    host: str = "127.0.0.1"
    port: int = 8000
    config: Path | None = Field(default=None, description="Models file (YAML); none = the packaged model alone.")
    log_level: str = "info"
    log_json: bool = True
    root_path: str = ""
    # Serving processes sharing the port (app/cli/workers.py). More than one only where every piece of
    # state is shared (Postgres, Redis, no in-process model); otherwise one, said at start-up.
    workers: int = Field(default=1, ge=1)

    # Requests
    max_body_bytes: int = 1024 * 1024
    # Per connection, before the app sees a request (app/api/connections.py).
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    max_connections_per_client: int = Field(default=256, ge=1)
    sse_ping_seconds: float = 15.0
    default_queue_depth: int = 16
    default_timeout_s: float = 300.0
    default_first_token_timeout_s: float = 120.0
    shutdown_grace_s: float = 20.0
    # SIGTERM (an orchestrator's stop) turns /readyz to 503 at once but keeps serving this long before
    # the listener closes, so a load balancer sees the replica leave before it stops taking connections.
    shutdown_delay_s: float = Field(default=0.0, ge=0)

    # Storage
    database_url: str = "sqlite+aiosqlite:///./slipway.db"
    db_timeout_s: float = 5.0
    migrate_on_start: bool = True
    # Postgres pool per replica (SQLite needs none). A conversation turn holds one connection for its
    # session's lock; at most db_pool_size + db_max_overflow - 10 turns do at once (10 stay for the rest).
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    retention_max_age_days: float | None = None
    retention_max_sessions: int | None = None
    retention_interval_s: float = 3600.0

    # Auth and limits
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allow_no_auth: bool = False
    auth_metrics: bool = True
    redis_url: str | None = None
    # Connections this process opens to Redis at most (requests wait briefly for a free one).
    redis_max_connections: int = Field(default=32, ge=1)
    # Namespace of Slipway's keys in Redis: deployments sharing one Redis set different prefixes.
    redis_prefix: str = Field(default="slipway:", min_length=1, max_length=64)
    default_rpm: int | None = None
    default_tpm: int | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Host names a loopback service without keys also answers to (besides localhost, *.localhost and
    # loopback addresses): a DNS-rebinding page reaches 127.0.0.1 under a name of its own choosing.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Evaluation runs the web page shows (read-only): a folder of `python -m eval` run directories.
    eval_runs_dir: Path | None = None
    # ...and the runs `python -m eval --mlflow-uri` logged to this MLflow tracking server (http(s)://),
    # in this experiment.
    eval_mlflow_uri: str | None = None
    eval_mlflow_experiment: str = "slipway-eval"

    # Observability
    otlp_endpoint: str | None = None

    # Tunnel
    ngrok_authtoken: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLIPWAY_NGROK_AUTHTOKEN", "NGROK_AUTHTOKEN")
    )
    ngrok_path: Path | None = None  # the agent binary; default: pyngrok's (downloaded there on first use)
    ngrok_config_path: Path | None = None  # the agent's config file; default: ngrok's own
    ngrok_region: str | None = None
    ngrok_version: Literal["v2", "v3"] = "v3"  # the agent's major version
    ngrok_startup_timeout_s: int = Field(default=20, ge=1)

    # Remote providers: their conventional variables, read here so no other module touches os.environ.
    ollama_host: str | None = Field(default=None, validation_alias=AliasChoices("SLIPWAY_OLLAMA_HOST", "OLLAMA_HOST"))

    @field_validator("api_keys", "cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        """Accept `a,b,c` from the environment as well as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def per_worker(self, total: int) -> int:
        """One worker's share of a service-wide bound (queue slots, connections per client): the
        kernel spreads connections over the workers, so each holds its part, rounded up."""
        return max(1, -(-total // self.workers))

    @property
    def is_loopback_bind(self) -> bool:
        return is_loopback(self.host)

    def env_secret(self, name: str) -> str | None:
        """Read a provider key named in the models file (`api_key_env`).

        The models file names variables rather than holding keys, so keys stay out of files; this is the
        single door through which such a variable is read.
        """
        value = os.environ.get(name)
        if value is None:
            value = _dotenv_values().get(name)
        return value or None


@functools.lru_cache(maxsize=256)
def is_loopback(host: str) -> bool:
    """Cached: the auth layer asks it of every request's Host header (`ipaddress` parses slowly);
    bounded, since the header is the client's."""
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def _dotenv_values() -> dict[str, str]:
    path = Path(".env")
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
