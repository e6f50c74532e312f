"""Helpers for the hardening proofs: servers with keys and small queues, a scripted upstream process,
and SSE clients that time what they see."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.auth.keys import generate_key
from app.storage.tables import keys_metadata as metadata
from tests.servers import ROOT, SlipwayServer, free_port, write_models_file

SYSTEM = "Answer in one short sentence."
KEY = generate_key()


def bearer(key: str | None = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def local_model(name: str = "smollm2", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "local",
        "system_prompt": SYSTEM,
        "params": {"temperature": 0, "max_tokens": 16},
        **extra,
    }


def upstream_model(name: str, upstream: Upstream, script: str, **extra: Any) -> dict[str, Any]:
    """A models-file entry for the scripted upstream (`words-<n>-<ms>`)."""
    return {"name": name, "provider": "openai", "base_url": upstream.url + "/v1", "model": script, **extra}


def server_with(tmp: Path, models: list[dict[str, Any]], **env: str) -> SlipwayServer:
    config = write_models_file(tmp, {"default_model": models[0]["name"], "models": models})
    return SlipwayServer(config=config, env=env)


def chat_body(content: str = "What is the capital of France?", **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


@dataclass
class StreamResult:
    status: int
    headers: dict[str, str]
    events: list[Any] = field(default_factory=list)
    error: dict[str, Any] | None = None
    started: float = 0.0
    first_token_at: float | None = None
    ended: float = 0.0

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1] == "[DONE]"

    @property
    def text(self) -> str:
        return "".join(
            (e["choices"][0]["delta"].get("content") or "")
            for e in self.events
            if isinstance(e, dict) and e.get("choices")
        )

    @property
    def error_events(self) -> list[dict[str, Any]]:
        return [e["error"] for e in self.events if isinstance(e, dict) and "error" in e]


def parse_event(line: str) -> Any:
    payload = line.removeprefix("data: ")
    return payload if payload == "[DONE]" else orjson.loads(payload)


def stream_chat(url: str, body: dict[str, Any], key: str | None = KEY, timeout: float = 120) -> StreamResult:
    """A streamed chat completion, read to the end, with the time of its first content token."""
    started = time.perf_counter()
    with httpx.stream(
        "POST", url + "/v1/chat/completions", json={**body, "stream": True}, headers=bearer(key), timeout=timeout
    ) as r:
        result = StreamResult(r.status_code, dict(r.headers), started=started)
        if r.status_code != 200:
            r.read()
            result.error = r.json().get("error")
            result.ended = time.perf_counter()
            return result
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            event = parse_event(line)
            result.events.append(event)
            if result.first_token_at is None and isinstance(event, dict):
                choices = event.get("choices") or []
                if choices and choices[0]["delta"].get("content"):
                    result.first_token_at = time.perf_counter()
    result.ended = time.perf_counter()
    return result


def access_log(server: SlipwayServer) -> list[dict[str, Any]]:
    """The server's structured access-log lines so far."""
    lines = []
    for line in server.log_text().splitlines():
        if '"slipway.access"' in line:
            try:
                lines.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                pass  # the line the server is writing right now
    return lines


def access_line(server: SlipwayServer, match: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
    """The first access-log line that matches; lines are written just after their response ends, so wait."""
    deadline = time.monotonic() + timeout
    while True:
        for line in access_log(server):
            if match(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError("no matching access-log line")
        time.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Upstream:
    """The scripted OpenAI-compatible upstream (`tests.hardening.upstream`) as a process of its own."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Upstream:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.hardening.upstream", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(self.url + "/v1/chat/completions", json={"model": "words-1-0", "messages": []}, timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("scripted upstream did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with Upstream() as u:
        yield u


def make_tables(db: Path) -> None:
    """The api_keys table (what the storage migrations create on a real deployment)."""

    from sqlalchemy.ext.asyncio import create_async_engine

    async def create() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await engine.dispose()

    asyncio.run(create())


def keys(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["SLIPWAY_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "app", "keys", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
