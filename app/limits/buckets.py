"""Token buckets for requests and tokens per minute, and the decision a request gets from them.

Why token buckets: a key with 60 RPM may send one request a second forever, or a burst of 60 after a
quiet minute, and never has to wait for a window boundary; the `reset` headers then mean what
OpenAI's mean: the time until the bucket is full again. The token budget is charged with the
tokens a request really used, after it ends (nobody knows them before): a request is admitted
while the key's token bucket is not in debt, and a costly answer can push it below zero, which
then refuses requests until it refills.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.core.errors import RateLimited


def refill(level: float, elapsed_s: float, per_minute: int) -> float:
    return min(float(per_minute), level + elapsed_s * per_minute / 60.0)


def go_duration(seconds: float) -> str:
    """OpenAI's reset format (Go durations): `20ms`, `1s`, `1.5s`, `6m0s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


@dataclass(slots=True)
class Decision:
    """What the limiter said: admitted or not, and what is left in each bucket after this request."""

    allowed: bool
    rpm: int | None
    tpm: int | None
    requests_left: float
    tokens_left: float
    limited_by: str | None = None
    #: tokens the refused request needed in the bucket (a reservation's size; 1 for plain admission)
    tokens_needed: float = 1.0

    @classmethod
    def from_levels(cls, rpm: int | None, tpm: int | None, requests: float, tokens: float, allowed: bool) -> Decision:
        limited_by = None
        if not allowed:
            limited_by = "requests" if rpm and requests < 1 else "tokens"
        return cls(allowed, rpm, tpm, requests, tokens, limited_by)

    def retry_after_s(self) -> float:
        if self.limited_by == "requests" and self.rpm:
            return (1 - self.requests_left) * 60.0 / self.rpm
        if self.limited_by == "tokens" and self.tpm:
            return max(0.0, self.tokens_needed - self.tokens_left) * 60.0 / self.tpm
        return 0.0

    def headers(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        if self.rpm:
            left = max(0.0, self.requests_left)
            out += [
                (b"x-ratelimit-limit-requests", str(self.rpm).encode()),
                (b"x-ratelimit-remaining-requests", str(math.floor(left)).encode()),
                (b"x-ratelimit-reset-requests", go_duration((self.rpm - left) * 60.0 / self.rpm).encode()),
            ]
        if self.tpm:
            left = max(0.0, self.tokens_left)
            reset = (self.tpm - self.tokens_left) * 60.0 / self.tpm
            out += [
                (b"x-ratelimit-limit-tokens", str(self.tpm).encode()),
                (b"x-ratelimit-remaining-tokens", str(math.floor(left)).encode()),
                (b"x-ratelimit-reset-tokens", go_duration(reset).encode()),
            ]
        return out

    def error(self) -> RateLimited:
        wait = self.retry_after_s()
        if self.limited_by == "requests":
            what = f"requests per minute (RPM): limit {self.rpm}"
        else:
            what = f"tokens per minute (TPM): limit {self.tpm}, remaining {math.floor(max(0.0, self.tokens_left))}"
            if self.tokens_needed > 1:
                what += f", this request may use up to {math.ceil(self.tokens_needed)} (its prompt and max_tokens)"
        return RateLimited(
            f"Rate limit reached for {what}. Please try again in {go_duration(wait)}.",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


class LocalLimiter:
    """Buckets in this process: exact for one replica, and the fallback when Redis is away."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: key id -> [requests level, tokens level, time of last update]; one entry per key, never more.
        self._buckets: dict[str, list[float]] = {}

    def _levels(self, key_id: str, rpm: int | None, tpm: int | None) -> list[float]:
        now = self.clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = [float(rpm or 0), float(tpm or 0), now]
            return bucket
        elapsed = now - bucket[2]
        if rpm:
            bucket[0] = refill(bucket[0], elapsed, rpm)
        if tpm:
            bucket[1] = refill(bucket[1], elapsed, tpm)
        bucket[2] = now
        return bucket

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Decision:
        bucket = self._levels(key_id, rpm, tpm)
        allowed = (not rpm or bucket[0] >= 1) and (not tpm or bucket[1] > 0)
        if allowed and rpm:
            bucket[0] -= 1
        return Decision.from_levels(rpm, tpm, bucket[0], bucket[1], allowed)

    async def charge(self, key_id: str, tpm: int | None, tokens: int) -> None:
        """Take `tokens` from the budget (a negative amount returns an unused reservation)."""
        if not tpm or tokens == 0:
            return
        bucket = self._levels(key_id, None, tpm)
        bucket[1] = min(float(tpm), bucket[1] - tokens)

    async def reserve(self, key_id: str, tpm: int, tokens: int) -> Decision:
        bucket = self._levels(key_id, None, tpm)
        allowed = bucket[1] >= tokens
        if allowed:
            bucket[1] -= tokens
        decision = Decision.from_levels(None, tpm, 0.0, bucket[1], allowed)
        decision.tokens_needed = tokens
        return decision

    async def close(self) -> None:
        return None

    def describe(self) -> tuple[bool, str]:
        return True, "local (this replica)"
