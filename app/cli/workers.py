"""More than one serving process on one port, when that is correct (`--workers N`, SLIPWAY_WORKERS).

Why: one Python process uses about one core. Measured on the 2-core bench machine (docs/performance.md,
"Worker processes"), two processes carry more requests per second than one at 16 and 64 clients.

Why only sometimes: a process holds its own memory. Conversations in SQLite (one writer file), rate
limits counted in memory (each worker would grant the full limit), an in-process model (each worker
would load its own weights and run its own one-at-a-time queue) or a tunnel (a developer's machine)
would all be wrong or wasteful with several workers; then Slipway serves with one process and says why.
With Postgres and Redis everything a request touches is shared, the queue bounds and the per-client
connection bound are divided among the workers (`Settings.per_worker`), and `/metrics` merges every
worker's series (prometheus_client's multiprocess mode, in a directory this process owns).

How: the parent binds the socket once and forks the workers (the kernel hands each connection to one
of them); each worker builds its own app and runs its own uvicorn server on that socket. The parent
forwards SIGTERM/SIGINT (each worker then drains as a single process does), replaces a worker that
dies, and gives up when workers keep dying at start-up. Linux only (fork, prctl).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.config import Settings
from app.core.models_file import ModelsFile
from app.providers.registry import PROVIDERS

log = logging.getLogger("app.workers")

#: The variable prometheus_client reads (at import) to keep its values in per-process files.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: A worker that dies this soon after starting counts toward giving up.
EARLY_DEATH_S = 10.0
#: Early deaths in a row after which the service stops instead of forking forever.
MAX_EARLY_DEATHS = 3
PR_SET_PDEATHSIG = 1


def single_process_reasons(settings: Settings, models_file: ModelsFile, *, tunnel: bool) -> list[str]:
    """Why this configuration must be served by one process (empty: several are correct)."""
    reasons: list[str] = []
    if settings.database_url.startswith("sqlite"):
        reasons.append("conversations are in SQLite (set SLIPWAY_DATABASE_URL to Postgres to share them)")
    if not settings.redis_url:
        reasons.append("rate limits are counted in memory (set SLIPWAY_REDIS_URL to share them)")
    in_process = [spec.name for spec in models_file.models if PROVIDERS.get(spec.provider).in_process]
    if in_process:
        reasons.append(f"{', '.join(in_process)} runs in this process (each worker would load its own copy and queue)")
    if tunnel:
        reasons.append("a tunnel serves one developer's machine")
    return reasons


def metrics_directory() -> str:
    """A fresh directory for the workers' metric files, named to prometheus_client before it is imported
    by the app (the parent imports only the CLI; its value class is chosen at import)."""
    path = tempfile.mkdtemp(prefix="slipway-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = path
    import prometheus_client.values as values

    values.ValueClass = values.get_value_class()  # in case something imported it already
    return path


@dataclass
class Supervisor:
    """Forks `count` workers that each call `run(sock)` and exit with its return code."""

    count: int
    sock: socket.socket
    run: Callable[[socket.socket], int]
    metrics_dir: str
    workers: dict[int, float] = field(default_factory=dict)  # pid -> started at (monotonic)
    stopping: bool = False
    signals_sent: int = 0
    early_deaths: int = 0
    code: int = 0

    def serve(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.count):
                self._fork()
            log.info("serving with %d worker processes (pids %s)", self.count, ", ".join(map(str, self.workers)))
            while self.workers:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                self._reap(pid, status)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.sock.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return self.code

    def _fork(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                os.setpgid(0, 0)  # Ctrl-C reaches the parent alone, which forwards it once
                _die_with_parent()
                code = self.run(self.sock)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = time.monotonic()

    def _reap(self, pid: int, status: int) -> None:
        started = self.workers.pop(pid, None)
        if started is None:
            return
        code = os.waitstatus_to_exitcode(status)
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.metrics_dir)
        if self.stopping:
            self.code = self.code or max(code, 0)
            return
        early = time.monotonic() - started < EARLY_DEATH_S
        self.early_deaths = self.early_deaths + 1 if early else 0
        if self.early_deaths >= MAX_EARLY_DEATHS:
            log.error("workers keep exiting at start-up (last: pid %d, exit %d); stopping", pid, code)
            self.code = 1
            self._stop(signal.SIGTERM)
            return
        log.error("worker %d exited (%d); starting another", pid, code)
        self._fork()

    def _on_signal(self, signum: int, frame: object) -> None:
        # First signal: every worker drains (SIGTERM). A second one is passed on as it came, so a
        # second Ctrl-C ends the workers at once, as it does uvicorn.
        self._stop(signal.SIGTERM if self.signals_sent == 0 else signum)

    def _stop(self, signum: int) -> None:
        self.stopping = True
        self.signals_sent += 1
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _die_with_parent() -> None:
    """A worker whose parent was killed outright must not keep the port: the kernel sends it SIGTERM."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
