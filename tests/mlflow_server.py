"""A real MLflow tracking server for tests and benchmarks: `mlflow server` with a SQLite backend and a
local artifact folder on a free loopback port.

with MlflowServer(tmp_dir) as url:
    MlflowClient(url).search_experiments()
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import free_port


class MlflowServer:
    def __init__(self, directory: Path, ready_timeout: float = 120.0) -> None:
        self.directory = Path(directory)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def log_text(self) -> str:
        path = self.directory / "mlflow-server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def __enter__(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = open(self.directory / "mlflow-server.log", "wb")
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.directory}/mlflow.db",
            "--artifacts-destination", str(self.directory / "artifacts"),
            "--workers", "1",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.directory,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}):\n{self.log_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"mlflow server not ready after {self.ready_timeout} s:\n{self.log_text()}")
            time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
