"""Start real Slipway servers (a real uvicorn in a subprocess, on a free loopback port) for tests.

with SlipwayServer(config=path, env={"SLIPWAY_API_KEYS": "k"}) as server:
    httpx.get(server.url + "/readyz")
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_models_file(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "models.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


KEY_SHAPED = re.compile(r"sk-slw-[A-Za-z0-9_-]{20,}")


def log_problems(text: str, secrets: list[str]) -> list[str]:
    """Every JSON log line must parse (scrubbing once made invalid JSON) and show no key. Lines that are
    not JSON (a human line such as the tunnel's URL, a Python warning) are only checked for keys."""
    problems = []
    # Split on newlines only, as a log shipper does: str.splitlines() would also split inside a valid
    # JSON string at U+2028 or NEL, which JSON allows raw.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith("{"):
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"log line {number} is not valid JSON: {line[:300]}")
        if any(secret in line for secret in secrets) or KEY_SHAPED.search(line):
            problems.append(f"log line {number} shows a key: {KEY_SHAPED.sub('sk-slw-<cut>', line)[:300]}")
    return problems


class SlipwayServer:
    """`python -m app` as a user runs it; logs go to a file the test can read (`.log_text()`)."""

    def __init__(
        self,
        *,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        ready_timeout: float = 90.0,
        wait_ready: bool = True,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.tmp = tempfile.TemporaryDirectory(prefix="slipway-test-")
        self.log_path = Path(self.tmp.name) / "server.log"
        self.config = config
        self.env = {
            "SLIPWAY_DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp.name}/slipway.db",
            "SLIPWAY_LOG_JSON": "true",
            **(env or {}),
        }
        self.args = args or []
        self.ready_timeout = ready_timeout
        self.wait_ready = wait_ready
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SlipwayServer:
        cmd = [sys.executable, "-m", "app", "--host", self.host, "--port", str(self.port)]
        if self.config:
            cmd += ["--config", str(self.config)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
        env.update(self.env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd + self.args, cwd=self.tmp.name, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        if self.wait_ready:
            self.wait_until_ready()
        return self

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {self.ready_timeout}s:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None) and not self._log.closed:
            self._log.close()
            problems = log_problems(self.log_text(), self.secrets())
            if problems:
                raise AssertionError("\n".join(problems[:5]))
        return self.proc.returncode if self.proc else None

    def secrets(self) -> list[str]:
        """The keys this server was given (static API keys, provider keys): none may reach its log."""
        out = []
        for name, value in self.env.items():
            if any(word in name for word in ("KEY", "TOKEN")) and not name.endswith("_ENV"):
                out += [v for v in value.split(",") if len(v) >= 8]
        return out

    def __enter__(self) -> SlipwayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.tmp.cleanup()
