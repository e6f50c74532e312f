"""The processes a gateway benchmark runs side by side on loopback: the mock upstream, Slipway with its
`openai` provider pointing at the mock, LiteLLM's proxy (Python) and Portkey's gateway (Node) pointing
at the same mock.

LiteLLM is installed on first use into its own virtual environment under ~/.cache/slipway/bench (never
into Slipway's), and runs offline: `LITELLM_LOCAL_MODEL_COST_MAP=True` stops its start-up download of
a cost map, and it needs a master key (shared/FINDINGS.md). Portkey's gateway is installed on first
use with npm (`@portkey-ai/gateway`, a fixed version) into the same cache, and routed to the mock per
request by its headers (`x-portkey-provider: openai`, `x-portkey-custom-host`); loopback hosts are
allowed by default.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

from tests.servers import ROOT, free_port

CACHE = Path.home() / ".cache" / "slipway" / "bench"
LITELLM_VENV = CACHE / "litellm-venv"
LITELLM_SPEC = "litellm[proxy]"
LITELLM_KEY = "sk-bench-litellm-master-key"
PORTKEY_DIR = CACHE / "portkey"
PORTKEY_SPEC = "@portkey-ai/gateway@1.15.2"
#: The gateway's streaming answers 500 ("TypeError: immutable" from undici, in its response service)
#: with @hono/node-server releases after 1.13 (Portkey-AI/gateway#1389, #1550; seen here with 1.19.19
#: and 1.14.2, on Node 20 and 22); with 1.13.8 it streams. npm's `overrides` pins it under the gateway.
PORTKEY_NODE_SERVER = "1.13.8"
MODEL = "bench"


@dataclass
class Target:
    """One thing to send load to: its chat completions URL, the key it wants, its process."""

    name: str
    url: str
    key: str | None
    proc: subprocess.Popen[bytes] | None = None
    #: Extra request headers (`Name: value`) the target needs on every request.
    headers: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def rss_mib(self) -> float:
        """Resident memory of the serving process and its children (workers), in MiB."""
        if self.proc is None:
            return 0.0
        root = psutil.Process(self.proc.pid)
        procs = [root, *root.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20


def _wait_http(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float, headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def mock_upstream(chunks: int, pace_ms: float, workdir: Path) -> Iterator[Target]:
    port = free_port()
    log = workdir / f"mock-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "bench.mock_upstream",
        "--port",
        str(port),
        "--chunks",
        str(chunks),
        "--pace-ms",
        str(pace_ms),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/v1/models", proc, log, 30)
        yield Target("direct", base + "/v1/chat/completions", None, proc)
    finally:
        _stop(proc)


@contextlib.contextmanager
def slipway(
    upstream: Target, workdir: Path, *, profile: Path | None = None, workers: int = 1
) -> Iterator[Target]:
    """`python -m app` as in production on loopback: JSON logs to a file, metrics on, auth off.

    `workers` > 1: that many processes (`--workers`), on what makes them correct: a database of its own
    on the machine's Postgres and the machine's Redis (target name `slipway-wN`)."""
    port = free_port()
    base_url = upstream.url.rsplit("/chat/completions", 1)[0]
    config = workdir / f"slipway-{port}.yaml"
    # The model's queue (concurrency 64, 16 waiting by default) is set above any load the bench sends, so
    # the figures are the gateway's own, not its backpressure answering 429 (LiteLLM has no such limit).
    entry = {"name": MODEL, "provider": "openai", "model": MODEL, "base_url": base_url, "concurrency": 2048}
    config.write_text(yaml.safe_dump({"models": [entry]}))
    log = workdir / f"slipway-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env.update(
        {
            "SLIPWAY_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/slipway-{port}.db",
            "SLIPWAY_LOG_JSON": "true",
            # Every bench client is 127.0.0.1: the per-address connection bound (256) would refuse the
            # stream curve's 512 streams, which measure the gateway, not that defence.
            "SLIPWAY_MAX_CONNECTIONS_PER_CLIENT": "4096",
        }
    )
    database = contextlib.ExitStack()
    if workers > 1:
        env.update(
            SLIPWAY_WORKERS=str(workers),
            SLIPWAY_DATABASE_URL=database.enter_context(postgres_database()),
            SLIPWAY_REDIS_URL=REDIS_URL,
        )
    args = ["--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
    cmd = [sys.executable, "-m", "app", *args]
    if profile is not None:  # pyinstrument samples the event loop's thread and writes pstats at exit
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "pstats", "-o", str(profile), "-m", "app", *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/readyz", proc, log, 90)
        name = "slipway" if workers == 1 else f"slipway-w{workers}"
        yield Target(name, base + "/v1/chat/completions", None, proc)
    finally:
        _stop(proc)
        database.close()


#: The machine's Postgres and Redis (tests/sessions/conftest.py uses the same).
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
REDIS_URL = "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A database of the bench's own on the machine's Postgres, dropped afterwards."""
    import asyncio
    import uuid

    import asyncpg

    name = f"slipway_bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(**POSTGRES)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{POSTGRES['user']}@{POSTGRES['host']}:{POSTGRES['port']}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def litellm_python(progress: bool = True) -> Path:
    """The LiteLLM venv's interpreter, creating the venv and installing LiteLLM on first use."""
    python = LITELLM_VENV / "bin" / "python"
    litellm = LITELLM_VENV / "bin" / "litellm"
    if litellm.exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"installing {LITELLM_SPEC} into {LITELLM_VENV} (once; about a minute)...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", LITELLM_SPEC], check=True)
    return python


def litellm_version() -> str:
    out = subprocess.run(
        [str(LITELLM_VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


@contextlib.contextmanager
def litellm(upstream: Target, workdir: Path) -> Iterator[Target]:
    litellm_python()
    port = free_port()
    base_url = upstream.url.rsplit("/chat/completions", 1)[0]
    config = workdir / f"litellm-{port}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {"model": f"openai/{MODEL}", "api_base": base_url, "api_key": "sk-mock"},
                    }
                ],
                "litellm_settings": {"drop_params": True},
            }
        )
    )
    log = workdir / f"litellm-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "LITELLM_", "OPENAI_"))}
    env.update({"LITELLM_MASTER_KEY": LITELLM_KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"})
    cmd = [
        str(LITELLM_VENV / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/health/liveliness", proc, log, 120)
        yield Target("litellm", base + "/v1/chat/completions", LITELLM_KEY, proc)
    finally:
        _stop(proc)


def portkey_installed(progress: bool = True) -> Path:
    """Portkey's gateway entry point, installing the npm package on first use (again when the pinned
    @hono/node-server differs from what is installed)."""
    start = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    server = PORTKEY_DIR / "node_modules" / "@hono" / "node-server" / "package.json"
    try:
        current = json.loads(server.read_text()).get("version")
    except (OSError, ValueError):
        current = None
    if start.exists() and current == PORTKEY_NODE_SERVER:
        return start
    PORTKEY_DIR.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"installing {PORTKEY_SPEC} into {PORTKEY_DIR} (once)...", flush=True)
    name, version = PORTKEY_SPEC.rsplit("@", 1)
    manifest = {
        "private": True,
        "dependencies": {name: version},
        "overrides": {"@hono/node-server": PORTKEY_NODE_SERVER},
    }
    (PORTKEY_DIR / "package.json").write_text(json.dumps(manifest, indent=2))
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=PORTKEY_DIR,
        check=True,
        capture_output=True,
    )
    return start


def portkey_version() -> str:
    try:
        return str(
            json.loads((PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "package.json").read_text())[
                "version"
            ]
        )
    except (OSError, ValueError, KeyError):
        return "unknown"


@contextlib.contextmanager
def portkey(upstream: Target, workdir: Path) -> Iterator[Target]:
    start = portkey_installed()
    port = free_port()
    log = workdir / f"portkey-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "OPENAI_"))}
    env["NODE_ENV"] = "production"
    cmd = ["node", str(start), f"--port={port}", "--headless"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=PORTKEY_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/", proc, log, 60)
        mock_v1 = upstream.url.rsplit("/chat/completions", 1)[0]
        headers = ["x-portkey-provider: openai", f"x-portkey-custom-host: {mock_v1}"]
        yield Target("portkey", base + "/v1/chat/completions", "sk-mock", proc, headers)
    finally:
        _stop(proc)


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="slipway-bench-")
