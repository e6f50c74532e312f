"""Two replicas on one Postgres: messages posted at once to one session through both are answered
one after the other, in order, each answer seeing every earlier turn (the advisory turn lock)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.sessions.conftest import Databases, echo_models, messages, new_session, start_server
from tests.sessions.standin import EchoModel
from tests.sessions.test_api import check_serialised

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_replicas_take_turns_on_a_shared_session(echo: EchoModel, tmp_path: Path) -> None:
    dbs = Databases("postgres", tmp_path)
    url = dbs.new()
    replicas = []
    for i in range(2):
        (tmp_path / f"r{i}").mkdir()
        replicas.append(start_server(tmp_path / f"r{i}", echo_models(echo), url))
    try:
        sid = new_session(replicas[0].url, model="recall-slow")["id"]
        contents = [f"via replica {i % 2}, message {i}" for i in range(6)]
        barrier = threading.Barrier(len(contents))
        responses: list[httpx.Response | None] = [None] * len(contents)

        def client(i: int) -> None:
            with httpx.Client(timeout=120) as c:
                barrier.wait()
                responses[i] = c.post(
                    f"{replicas[i % 2].url}/api/sessions/{sid}/messages", json={"content": contents[i]}
                )

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(contents))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = [r for r in responses if r is not None]
        assert [r.status_code for r in done] == [200] * len(contents), [r.text for r in done]
        check_serialised(messages(replicas[1].url, sid), contents, done)
    finally:
        for replica in replicas:
            replica.stop()
            replica.tmp.cleanup()
        dbs.drop_all()
