"""Rate limits per key on real servers: OpenAI's headers, 429 with Retry-After, tokens charged from
real usage, one budget shared by two replicas through Redis, and local limits while Redis is cut
(by a TCP proxy: the machine's Redis itself is never touched beyond our own keys)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.auth.keys import generate_key, static_identity
from tests.faults import TcpProxy
from tests.hardening.conftest import Upstream, access_log, bearer, chat_body, server_with, upstream_model
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow


def post(server: SlipwayServer, key: str, **body: object) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/chat/completions", json=chat_body("Hello", **body), headers=bearer(key), timeout=30
    )


@pytest.fixture(scope="module")
def limited(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SlipwayServer, str]]:
    key = generate_key()
    models = [upstream_model("fast", upstream, "words-12-0")]
    tmp = Path(tmp_path_factory.mktemp("limits"))
    with server_with(tmp, models, SLIPWAY_API_KEYS=key, SLIPWAY_DEFAULT_RPM="3", SLIPWAY_DEFAULT_TPM="40") as s:
        yield s, key


def test_requests_per_minute_with_openai_headers(limited: tuple[SlipwayServer, str]) -> None:
    server, key = limited
    # A GET does not count: only the calls that do work (POST under /v1 and /api).
    for _ in range(5):
        assert httpx.get(server.url + "/v1/models", headers=bearer(key)).status_code == 200
    first = post(server, key, max_tokens=1)
    assert first.status_code == 200, first.text
    assert first.headers["x-ratelimit-limit-requests"] == "3"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert first.headers["x-ratelimit-limit-tokens"] == "40"
    statuses = [post(server, key, max_tokens=1).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = post(server, key, max_tokens=1)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    metrics = httpx.get(server.url + "/metrics", headers=bearer(key)).text
    assert 'slipway_rate_limit_rejections_total{limit="requests"} 2.0' in metrics


def test_tokens_per_minute_are_charged_from_usage(upstream: Upstream, tmp_path: Path) -> None:
    """Each request reserves its worst case (prompt estimate + max_tokens = 9 + 12 here) before it runs
    and is charged what it used (1 + 12) when it ends."""
    key = generate_key()
    models = [upstream_model("fast", upstream, "words-12-0")]
    with server_with(tmp_path, models, SLIPWAY_API_KEYS=key, SLIPWAY_DEFAULT_TPM="40") as server:
        first = post(server, key, max_tokens=12)
        assert first.status_code == 200 and first.headers["x-ratelimit-remaining-tokens"] == "40"
        used = first.json()["usage"]["total_tokens"]
        assert 12 <= used < 21
        second = post(server, key, stream=True, max_tokens=12)
        assert second.status_code == 200
        remaining = int(second.headers["x-ratelimit-remaining-tokens"])
        assert 40 - used <= remaining <= 40 - used + 2, "the first answer's tokens counted (refill aside)"
        third = post(server, key, max_tokens=12)
        assert third.status_code == 429, "two answers leave less than the third's worst case of 21 tokens"
        assert "tokens per minute" in third.json()["error"]["message"]
        assert "may use up to 21" in third.json()["error"]["message"]


def test_tokens_of_an_abandoned_stream_are_charged(upstream: Upstream, tmp_path: Path) -> None:
    """Streaming and walking away must not be a way around tokens per minute."""
    key = generate_key()
    models = [upstream_model("long", upstream, "words-400-20"), upstream_model("tiny", upstream, "words-1-0")]
    # 60 tokens per minute refill one token a second: slow enough to read the charge off the next response.
    with server_with(tmp_path, models, SLIPWAY_API_KEYS=key, SLIPWAY_DEFAULT_TPM="60") as server:
        received = 0
        body = chat_body("Hello", model="long", stream=True)
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, headers=bearer(key), timeout=60) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                received += '"content":" w' in line
                if received == 5:
                    break  # the client leaves after five tokens of four hundred
        deadline = time.monotonic() + 30
        while not any(line["path"] == "/v1/chat/completions" for line in access_log(server)):
            assert time.monotonic() < deadline, "the abandoned request was never logged"
            time.sleep(0.1)
        [abandoned] = access_log(server)
        assert "completion_tokens" in abandoned, "no tokens were recorded for the abandoned answer"
        probe = post(server, key, model="tiny")
        charged = 60 - int(probe.headers["x-ratelimit-remaining-tokens"])
        total = abandoned["prompt_tokens"] + abandoned["completion_tokens"]
        assert received <= abandoned["completion_tokens"] < 400, abandoned
        assert received <= charged <= total, (charged, total, "what was generated before the client left is charged")


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    with TcpProxy(6379) as proxy:
        yield proxy


def readiness_detail(server: SlipwayServer) -> str:
    return httpx.get(server.url + "/readyz").json()["checks"]["rate_limits"]["detail"]


def test_replicas_share_one_budget_and_fall_back_to_local_limits_when_redis_is_cut(
    upstream: Upstream, redis_proxy: TcpProxy, tmp_path: Path
) -> None:
    key = generate_key()
    models = [upstream_model("fast", upstream, "words-2-0")]
    prefix = f"slipway-test-{uuid.uuid4().hex[:8]}:"  # this test's fleet and buckets, no one else's
    env = {
        "SLIPWAY_API_KEYS": key,
        "SLIPWAY_DEFAULT_RPM": "2",
        "SLIPWAY_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
        "SLIPWAY_REDIS_PREFIX": prefix,
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    direct = redis.Redis(port=6379)
    bucket_keys = [f"{prefix}rl:{static_identity(key, None, None).key_id}:{kind}" for kind in ("req", "tok")]
    try:
        with server_with(tmp_path / "a", models, **env) as a, server_with(tmp_path / "b", models, **env) as b:
            # One budget for both replicas: 2 requests per minute in all, not 2 each.
            statuses = [post(server, key).status_code for server in (a, b, a, b)]
            assert statuses == [200, 200, 429, 429]
            assert direct.exists(bucket_keys[0]), "the bucket lives in Redis"
            deadline = time.monotonic() + 30
            while "shared by 2 processes" not in readiness_detail(a):  # A has seen B's heartbeat
                assert time.monotonic() < deadline, readiness_detail(a)
                time.sleep(0.2)

            redis_proxy.cut()
            # Redis is gone: replica A keeps serving with its own local bucket, holding its share of the
            # budget (2 per minute / 2 processes = 1), so the two replicas still admit 2 in all, not 4.
            statuses = [post(a, key).status_code for _ in range(3)]
            assert statuses == [200, 429, 429]
            assert "unreachable" in readiness_detail(a)
            assert httpx.get(a.url + "/readyz").status_code == 200, "a limiter outage is not a service outage"
            warnings = [line for line in a.log_text().splitlines() if "is unreachable" in line]
            assert len(warnings) == 1, "one warning, not one per request"
            assert "enforcing 1/2 of each limit locally" in warnings[0]

            redis_proxy.restore()
            deadline = time.monotonic() + 30
            while "reachable again" not in a.log_text():
                assert time.monotonic() < deadline, "replica A never went back to Redis"
                post(a, key)
                time.sleep(0.3)
            assert "shared" in readiness_detail(a)
            # Shared again: B, which never saw the outage, and A draw from the same (spent) bucket.
            assert post(b, key).status_code == 429
    finally:
        direct.delete(*bucket_keys)
        direct.close()


def test_a_burst_cannot_spend_more_than_the_token_budget(upstream: Upstream, tmp_path: Path) -> None:
    """Tokens are charged after a generation ends, so admission used to check only that the bucket was
    positive: 12 parallel requests with 100 tokens a minute were all admitted (864 tokens in one burst).
    Each now reserves its worst case (prompt estimate + max_tokens) before it takes a slot."""
    key = generate_key()
    models = [upstream_model("slow", upstream, "words-40-25", concurrency=16, queue_depth=16)]
    with server_with(tmp_path, models, SLIPWAY_API_KEYS=key, SLIPWAY_DEFAULT_TPM="100") as server:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, headers=bearer(key), timeout=60) as client:
                body = chat_body("Tell me a story", max_tokens=40)
                return await asyncio.gather(*(client.post("/v1/chat/completions", json=body) for _ in range(12)))

        answers = asyncio.run(burst())
        served = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code == 429]
        assert len(served) + len(refused) == 12 and served and refused
        spent = sum(r.json()["usage"]["total_tokens"] for r in served)
        assert spent <= 100, f"{len(served)} answers spent {spent} tokens of a 100-token budget"
        error = refused[0].json()["error"]
        assert "may use up to" in error["message"] and int(refused[0].headers["retry-after"]) >= 1
