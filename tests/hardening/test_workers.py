"""Several worker processes on one port (`--workers`), on real servers: only where state is shared
(Postgres, Redis, remote models), one /metrics merged across the workers, a killed worker replaced,
SIGTERM ending them all; and one process, said at start-up, where state would be split."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.hardening.conftest import Upstream, bearer, chat_body, upstream_model
from tests.servers import SlipwayServer, write_models_file
from tests.sessions.conftest import Databases

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

KEY = "sk-test-workers-0123456789"


def children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (read from /proc, as ps does)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def requests_counted(server: SlipwayServer) -> float:
    text = httpx.get(server.url + "/metrics", headers=bearer(KEY), timeout=10).text
    pattern = re.compile(r'^slipway_requests_total\{[^}]*route="/v1/chat/completions"[^}]*\} ([0-9.e+]+)$', re.M)
    return sum(float(value) for value in pattern.findall(text))


@pytest.fixture
def shared_state(upstream: Upstream, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    dbs = Databases("postgres", tmp_path)
    try:
        config = write_models_file(
            # Room for all 8 test clients on either worker (4 slots + 8 waiting each): the kernel may hand
            # most connections of a burst to one worker, and this test is about sharing, not about 429s.
            tmp_path, {"models": [upstream_model("fast", upstream, "words-3-0", concurrency=8, queue_depth=16)]}
        )
        env = {
            "SLIPWAY_DATABASE_URL": dbs.new(),
            "SLIPWAY_REDIS_URL": "redis://127.0.0.1:6379/0",
            "SLIPWAY_API_KEYS": KEY,
            "SLIPWAY_WORKERS": "2",
            "TMPDIR": str(tmp_path),  # where the workers' metric files go, so the test can see them
        }
        yield config, env
    finally:
        dbs.drop_all()


def metric_file_pids(tmp_path: Path) -> set[int]:
    return {
        int(m.group(1))
        for f in tmp_path.glob("slipway-metrics-*/counter_*.db")
        if (m := re.search(r"_(\d+)\.db$", f.name))
    }


def test_two_workers_serve_one_port_with_merged_metrics(
    shared_state: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config, env = shared_state
    with SlipwayServer(config=config, env=env) as server:
        assert server.proc is not None
        workers = children(server.proc.pid)
        assert len(workers) == 2, server.log_text()
        assert "serving with 2 worker processes" in server.log_text()

        def ask(_: int) -> int:
            # A new connection each time: the kernel hands connections, not requests, to the workers.
            with httpx.Client(timeout=30) as client:
                return client.post(
                    server.url + "/v1/chat/completions", json=chat_body("Hello"), headers=bearer(KEY)
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(ask, range(60)))
        assert statuses == [200] * 60
        assert metric_file_pids(tmp_path) == workers, "both workers served requests"
        # Whichever worker answers the scrape, it reports all 60, not its own share.
        counts = {requests_counted(server) for _ in range(6)}
        assert counts == {60.0}

        # Each worker holds half of the queue depth (16); the merged gauge adds the halves back up.
        text = httpx.get(server.url + "/metrics", headers=bearer(KEY), timeout=10).text
        assert 'slipway_queue_depth_limit{model="fast"} 16.0' in text

        # A worker killed outright is replaced, and the service keeps answering.
        victim = next(iter(workers))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(children(server.proc.pid) - {victim}) < 2:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.2)
        assert f"worker {victim} exited" in server.log_text()
        server.wait_until_ready()
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(ask, range(8))) == [200] * 8
        assert requests_counted(server) == 68.0, "the dead worker's counts are kept"

        live = children(server.proc.pid)
        assert server.stop() == 0
        assert not [pid for pid in live if Path(f"/proc/{pid}").exists()], "every worker ended with the service"
        assert not list(tmp_path.glob("slipway-metrics-*")), "the metric files are removed at exit"


def test_state_in_this_process_keeps_one_worker_and_says_why(upstream: Upstream, tmp_path: Path) -> None:
    config = write_models_file(tmp_path, {"models": [upstream_model("fast", upstream, "words-3-0")]})
    with SlipwayServer(config=config, args=["--workers", "3"]) as server:
        assert server.proc is not None
        assert children(server.proc.pid) == set()
        line = next(line for line in server.log_text().splitlines() if "serving with one process" in line)
        assert "not 3" in line and "SQLite" in line and "SLIPWAY_REDIS_URL" in line
        response = httpx.post(server.url + "/v1/chat/completions", json=chat_body("Hi"), timeout=30)
        assert response.status_code == 200
