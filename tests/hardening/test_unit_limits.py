"""Token buckets, OpenAI's rate-limit headers, and the Redis fallback's switching (no server)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.limits.buckets import Decision, LocalLimiter, go_duration
from app.limits.shared import SharedLimiter, redis_address, share


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.0001, "1ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.9994, "59.999s"),
        (360, "6m0s"),
        (61.25, "1m1.25s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


async def test_requests_per_minute_refill_continuously() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock)
    results = [(await limiter.admit("k", 3, None)).allowed for _ in range(4)]
    assert results == [True, True, True, False]
    clock.now += 20  # 3 per minute: one request every 20 s
    assert (await limiter.admit("k", 3, None)).allowed
    assert not (await limiter.admit("k", 3, None)).allowed
    other = await limiter.admit("other-key", 3, None)
    assert other.allowed, "each key has its own bucket"


async def test_tokens_are_charged_after_the_fact_and_block_while_in_debt() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock)
    assert (await limiter.admit("k", None, 600)).allowed
    await limiter.charge("k", 600, 900)  # a costly answer: 300 tokens of debt
    refused = await limiter.admit("k", None, 600)
    assert not refused.allowed and refused.limited_by == "tokens"
    # 600 per minute = 10 per second: 300 of debt plus one token take 30.1 s
    assert refused.retry_after_s() == pytest.approx(30.1)
    clock.now += 31
    assert (await limiter.admit("k", None, 600)).allowed


async def test_headers_say_what_openai_says() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock)
    decision = await limiter.admit("k", 60, 1000)
    headers = {k.decode(): v.decode() for k, v in decision.headers()}
    assert headers == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "1000",
        "x-ratelimit-reset-tokens": "0s",
    }
    for _ in range(59):
        await limiter.admit("k", 60, 1000)
    refused = await limiter.admit("k", 60, 1000)
    error = refused.error()
    assert error.status_code == 429 and error.headers == {"Retry-After": "1"}
    assert "requests per minute" in error.message


def test_only_limited_dimensions_get_headers() -> None:
    assert Decision(True, None, None, 0, 0).headers() == []
    names = [k for k, _ in Decision(True, 5, None, 4, 0).headers()]
    assert names == [b"x-ratelimit-limit-requests", b"x-ratelimit-remaining-requests", b"x-ratelimit-reset-requests"]


def test_redis_address_never_shows_the_password() -> None:
    assert redis_address("redis://:s3cret-pass@cache.internal:6380/0") == "cache.internal:6380"


async def test_unreachable_redis_falls_back_locally_warns_once_and_probes_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A closed port stands for Redis being down (the fault tests cut a real one with a proxy)."""
    from tests.servers import free_port

    limiter = SharedLimiter(f"redis://127.0.0.1:{free_port()}/0", probe_s=3600)
    caplog.set_level(logging.WARNING, "app.limits.shared")
    try:
        results = [(await limiter.admit("k", 2, None)).allowed for _ in range(3)]
        assert results == [True, True, False], "local limits apply while Redis is away"
        assert not limiter.healthy
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1
        ok, detail = limiter.describe()
        assert ok and "unreachable" in detail
    finally:
        await limiter.close()
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("limit", "fleet", "part"), [(600, 3, 200), (600, 1, 600), (2, 3, 1), (10, 4, 2), (None, 3, None)]
)
def test_a_process_share_of_a_limit(limit: int | None, fleet: int, part: int | None) -> None:
    assert share(limit, fleet) == part


async def test_while_redis_is_away_each_process_holds_its_share_of_the_fleet_budget() -> None:
    """A fleet of 3 seen before the outage: this process admits a third of the RPM, and a token
    reservation larger than its share is cut down to the share (else it could never be admitted)."""
    from tests.servers import free_port

    limiter = SharedLimiter(f"redis://127.0.0.1:{free_port()}/0", probe_s=3600)
    limiter.fleet = 3
    try:
        admitted = [(await limiter.admit("k", 30, None)).allowed for _ in range(12)]
        assert admitted == [True] * 10 + [False] * 2
        assert "1/3 of each limit" in limiter.describe()[1]
        reservation = await limiter.reserve("t", 300, 250)
        assert reservation.allowed and reservation.tokens_left == 0.0, "250 wanted, the share of 100 taken"
    finally:
        await limiter.close()


@pytest.mark.redis
async def test_the_fleet_is_every_process_beating_under_one_prefix() -> None:
    """Real Redis: three limiters under one prefix count three, another prefix is not counted, and a
    limiter that closes leaves the fleet at once."""
    import uuid

    prefix = f"slipway-unit-{uuid.uuid4().hex[:8]}:"
    limiters = [SharedLimiter("redis://127.0.0.1:6379/0", prefix=prefix) for _ in range(3)]
    stranger = SharedLimiter("redis://127.0.0.1:6379/0", prefix=prefix + "other:")
    try:
        await stranger.redis.beat()
        counts = [await limiter.redis.beat() for limiter in limiters]
        assert counts == [1, 2, 3]
        await limiters[0].close()
        assert await limiters[1].redis.beat() == 2
    finally:
        for limiter in [*limiters[1:], stranger]:
            await limiter.close()


@pytest.mark.parametrize("backend", ["local", "redis"])
async def test_a_reservation_takes_the_worst_case_and_settling_returns_the_rest(backend: str) -> None:
    """Local buckets and the Redis script (the machine's Redis, a key of its own) behave alike."""
    import uuid

    from app.limits.shared import RedisLimiter

    limiter = LocalLimiter() if backend == "local" else RedisLimiter("redis://127.0.0.1:6379/0")
    key = f"test-reserve-{uuid.uuid4().hex[:8]}"
    try:
        first = await limiter.reserve(key, 100, 70)
        assert first.allowed and first.tokens_left == pytest.approx(30, abs=0.5)
        second = await limiter.reserve(key, 100, 70)
        assert not second.allowed and second.limited_by == "tokens"
        assert "may use up to 70" in second.error().message
        assert second.retry_after_s() == pytest.approx(24, abs=0.5)  # 40 tokens short at 100 a minute
        await limiter.charge(key, 100, 20 - 70)  # it used 20: 50 come back
        assert (await limiter.reserve(key, 100, 70)).allowed
        await limiter.charge(key, 100, -1000)  # a refund never lifts the bucket past the budget
        capped = await limiter.reserve(key, 100, 101)
        assert not capped.allowed and capped.tokens_left <= 100.01
    finally:
        await limiter.close()
