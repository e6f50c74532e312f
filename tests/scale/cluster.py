"""Several real Slipway replicas behind a real HAProxy, on one Postgres database and one Redis.

    with Cluster(tmp, replicas=3) as cluster:
        httpx.post(cluster.url + "/v1/chat/completions", ...)   # through the balancer
        cluster.stats()                                          # HAProxy's view: r0 UP, r1 DOWN, ...
        cluster.restart(1)                                       # SIGTERM, wait, start again, wait UP

What it starts: a scripted OpenAI-compatible upstream process (`tests.hardening.upstream`: the
model is never the bottleneck), the conversation stand-in (`tests.sessions.standin`: its answers
show the history it was sent), an empty Postgres database of its own, a Redis namespace of its own
(`SLIPWAY_REDIS_PREFIX`, reached through a TCP proxy a test can cut), API keys with limits made by
`python -m app keys create`, N `python -m app` replicas on loopback ports, and HAProxy (Debian's
package) with a generated config that health-checks `/readyz`. Nothing on the machine is stopped:
the shared Postgres and Redis are only used, and faults go through the proxy.

Also run by hand with a report: `bash scripts/scale.sh` (tests/scale/report.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.faults import TcpProxy
from tests.hardening.conftest import Upstream
from tests.servers import ROOT, SlipwayServer, free_port, write_models_file
from tests.sessions.conftest import Databases
from tests.sessions.standin import EchoModel

#: HAProxy's health check: every 500 ms, DOWN after 2 failures, UP after 2 successes.
CHECK_INTER_MS = 500
CHECK_FALL = 2
CHECK_RISE = 2
#: SIGTERM keeps a replica serving (not ready) this long: longer than HAProxy takes to see it leave.
SHUTDOWN_DELAY_S = 3.0
#: Pools per replica, documented in docs/production.md ("Connections").
DB_POOL_SIZE = 5
DB_MAX_OVERFLOW = 10
REDIS_MAX_CONNECTIONS = 8
#: The limits under test (one key each).
RPM = 600
TPM = 3000


def haproxy_config(port: int, servers: list[int], socket_path: Path) -> str:
    """Why these options: `http-server-close` so that HAProxy never re-uses a backend connection a
    replica is closing (a keep-alive race that would turn into a 502 during a restart); `redispatch`
    with retries so that a connection refused by a dead replica is retried on another one (nothing
    was sent yet, so it is safe even for POST); `/readyz` as the health check, so a draining replica
    leaves the rotation before it closes its listener."""
    lines = [
        "global",
        "    maxconn 4096",
        f"    stats socket {socket_path} mode 600 level admin",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 120s",
        "    timeout server 120s",
        "    timeout http-request 10s",
        "    retries 3",
        "    option redispatch",
        "    option http-server-close",
        "frontend slipway",
        f"    bind 127.0.0.1:{port}",
        "    default_backend replicas",
        "backend replicas",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri /readyz",
        "    http-check expect status 200",
        "    http-response set-header X-Replica %s",
        f"    default-server inter {CHECK_INTER_MS}ms fall {CHECK_FALL} rise {CHECK_RISE}",
    ]
    lines += [f"    server r{i} 127.0.0.1:{p} check" for i, p in enumerate(servers)]
    return "\n".join(lines) + "\n"


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not found:
        raise RuntimeError("HAProxy is not installed: `bash scripts/bootstrap.sh dev` installs Debian's haproxy")
    return found


@dataclass
class Keys:
    """API keys made for the run: `admin` has no limits; `rpm` has RPM; `tpm` has TPM; `cut` has RPM
    (for the Redis-outage proof, so its bucket starts fresh)."""

    admin: str = ""
    rpm: str = ""
    tpm: str = ""
    cut: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Cluster:
    def __init__(self, tmp: Path, replicas: int = 3, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.count = replicas
        self.extra_env = env or {}
        self.prefix = f"slipway-scale-{uuid.uuid4().hex[:8]}:"
        self.dbs = Databases("postgres", tmp)
        self.upstream = Upstream()
        self.echo = EchoModel()
        self.redis = TcpProxy(6379)
        self.ports = [free_port() for _ in range(replicas)]
        self.replicas: list[SlipwayServer | None] = [None] * replicas
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket_path = tmp / "haproxy.sock"
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.keys = Keys()
        self.database_url = ""
        self.database = ""
        self.config = tmp / "models.yaml"
        self._logs: list[str] = []

    # -- set-up ---------------------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.upstream.start()
        self.echo.__enter__()
        self.redis.start()
        self.database_url = self.dbs.new()
        self.database = self.database_url.rsplit("/", 1)[1]
        write_models_file(
            self.tmp,
            {
                "default_model": "fast",
                "models": [
                    {
                        "name": "fast",
                        "provider": "openai",
                        "base_url": self.upstream.url + "/v1",
                        "model": "words-8-0",
                        "concurrency": 64,
                        "queue_depth": 256,
                    },
                    {
                        "name": "stream",
                        "provider": "openai",
                        "base_url": self.upstream.url + "/v1",
                        "model": "words-20-50",
                        "concurrency": 64,
                        "queue_depth": 256,
                    },
                    self.echo.entry("recall", "recall"),
                ],
            },
        )
        self._cli("db", "upgrade")
        self.keys = Keys(
            admin=self._key("admin"),
            rpm=self._key("rpm", "--rpm", str(RPM)),
            tpm=self._key("tpm", "--tpm", str(TPM)),
            cut=self._key("cut", "--rpm", str(RPM)),
        )
        with ThreadPoolExecutor(self.count) as pool:
            list(pool.map(self.start_replica, range(self.count)))
        self._start_haproxy()
        self.wait_all_up()
        return self

    def env(self) -> dict[str, str]:
        return {
            "SLIPWAY_DATABASE_URL": self.database_url,
            "SLIPWAY_REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/0",
            "SLIPWAY_REDIS_PREFIX": self.prefix,
            "SLIPWAY_REDIS_MAX_CONNECTIONS": str(REDIS_MAX_CONNECTIONS),
            "SLIPWAY_DB_POOL_SIZE": str(DB_POOL_SIZE),
            "SLIPWAY_DB_MAX_OVERFLOW": str(DB_MAX_OVERFLOW),
            "SLIPWAY_SHUTDOWN_DELAY_S": str(SHUTDOWN_DELAY_S),
            "SLIPWAY_SHUTDOWN_GRACE_S": "20",
            "SLIPWAY_MIGRATE_ON_START": "false",
            **self.extra_env,
        }

    def _cli(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
        env.update(self.env())
        done = subprocess.run(
            [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"python -m app {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _key(self, name: str, *limits: str) -> str:
        return json.loads(self._cli("keys", "create", "--name", name, *limits, "--json"))["key"]

    def start_replica(self, index: int) -> SlipwayServer:
        server = SlipwayServer(config=self.config, env=self.env(), port=self.ports[index], ready_timeout=60)
        self.replicas[index] = server
        return server.start()

    def _start_haproxy(self) -> None:
        config = self.tmp / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.ports, self.socket_path))
        log = open(self.tmp / "haproxy.log", "wb")
        self.haproxy = subprocess.Popen([haproxy_binary(), "-db", "-f", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while not self.socket_path.exists():
            if self.haproxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("HAProxy did not start:\n" + (self.tmp / "haproxy.log").read_text())
            time.sleep(0.05)

    # -- HAProxy's view -------------------------------------------------------------------------------

    def admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(self.socket_path))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> dict[str, dict[str, str]]:
        """Per server (`r0`, `r1`...): HAProxy's `show stat` row (status, scur, stot...)."""
        text = self.admin("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: row for row in rows if row["pxname"] == "replicas" and row["svname"].startswith("r")}

    def status(self, index: int) -> str:
        return self.stats()[f"r{index}"]["status"].split()[0]

    def wait_status(self, index: int, status: str, timeout: float = 60) -> float:
        """Seconds until HAProxy reports replica `index` as `status` (UP / DOWN)."""
        started = time.monotonic()
        while (seen := self.status(index)) != status:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"r{index} still {seen} after {timeout} s, not {status}")
            time.sleep(0.05)
        return time.monotonic() - started

    def wait_all_up(self) -> None:
        for index in range(self.count):
            self.wait_status(index, "UP")

    # -- operations -----------------------------------------------------------------------------------

    def replica(self, index: int) -> SlipwayServer:
        server = self.replicas[index]
        assert server is not None
        return server

    def kill(self, index: int) -> None:
        server = self.replica(index)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()

    def restart(self, index: int) -> tuple[int | None, float]:
        """SIGTERM replica `index`, wait for it to exit, start a new one on its port, wait until HAProxy
        routes to it again. Returns (exit code, seconds until HAProxy marked it DOWN)."""
        server = self.replica(index)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        down = self.wait_status(index, "DOWN")
        server.proc.wait(60)
        code = server.stop()
        self._logs.append(server.log_text())
        server.tmp.cleanup()
        self.start_replica(index)
        self.wait_status(index, "UP")
        return code, down

    def logs(self) -> str:
        """Every replica's log so far, the stopped ones included."""
        live = [s.log_text() for s in self.replicas if s is not None]
        return "\n".join(self._logs + live)

    # -- shared state, read directly ------------------------------------------------------------------

    @staticmethod
    def _postgres(sql: str, *args: object) -> int:
        import asyncio

        import asyncpg

        async def read() -> int:
            conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
            try:
                return int(await conn.fetchval(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(read())

    def postgres_connections(self) -> int:
        """Connections to this run's database, as Postgres counts them."""
        return self._postgres("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.database)

    def postgres_max_connections(self) -> int:
        return self._postgres("SHOW max_connections")

    def redis_connections(self) -> int:
        """Connections to Redis from this run's replicas (they come through the proxy, whose port
        only they use; counted by Redis itself, by the client's address)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379)
        try:
            clients = client.client_list()
        finally:
            client.close()
        return sum(1 for c in clients if c.get("name", "").startswith(self.prefix))

    def replica_stat(self, index: int) -> dict[str, Any]:
        """RSS (KiB) and open file descriptors of a replica's process, from /proc."""
        server = self.replica(index)
        assert server.proc is not None
        pid = server.proc.pid
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return {"rss_kib": rss, "fds": fds}

    # -- tear-down ------------------------------------------------------------------------------------

    def stop(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        for server in self.replicas:
            if server is not None:
                try:
                    server.stop(timeout=30)
                finally:
                    server.tmp.cleanup()
        self.redis.stop()
        self.echo.__exit__(None, None, None)
        self.upstream.kill()
        self.dbs.drop_all()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client(timeout: float = 60) -> httpx.Client:
    return httpx.Client(timeout=timeout)
