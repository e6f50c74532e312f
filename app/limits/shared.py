"""Rate limits shared by every replica through Redis, falling back to local limits while Redis is away.

Why a Lua script: reading, refilling and taking from a bucket must be one atomic step, or two
replicas admit the same last request; the script also takes the time from Redis (`TIME`), so the
replicas' clocks do not matter. Why fall back instead of failing: a limiter outage must not become a
service outage. While Redis is unreachable each process enforces its share of each limit on its own
(the limit divided by the number of processes last seen in the fleet, rounded down, at least 1), so
the fleet as a whole still admits about one budget, not N; it logs one warning and tries Redis again
at most once per `PROBE_S`; the first success logs the recovery and the shared budget is back.

The fleet: every process using the limiter (each replica, each worker of a replica) writes a
heartbeat into one Redis sorted set every `HEARTBEAT_S`; members silent for `FLEET_TTL_S` drop out.
Every key starts with `SLIPWAY_REDIS_PREFIX` (`slipway:`) then `rl:`: two deployments sharing one
Redis set different prefixes, so that neither their buckets nor their fleets mix.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from urllib.parse import urlsplit

from app.limits.buckets import Decision, LocalLimiter

log = logging.getLogger(__name__)

PROBE_S = 1.0
SOCKET_TIMEOUT_S = 0.25
HEARTBEAT_S = 2.0
FLEET_TTL_S = 3 * HEARTBEAT_S

# KEYS: requests bucket, tokens bucket. ARGV: rpm (0 = none), tpm (0 = none), op ("admit" | "charge" |
# "reserve"), tokens. A negative charge returns an unused reservation (capped at the budget).
# Returns {allowed, requests level, tokens level} (levels as strings: Lua numbers would be truncated).
LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local function level(key, cap)
  local v = redis.call('HMGET', key, 'l', 't')
  local l = tonumber(v[1])
  if l == nil then return cap end
  l = l + (now - tonumber(v[2])) * cap / 60
  if l > cap then l = cap end
  return l
end
local function save(key, l, cap)
  redis.call('HSET', key, 'l', tostring(l), 't', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((cap - l) * 60000 / cap) + 1000)
end
local rl = 0
local tl = 0
if rpm > 0 then rl = level(KEYS[1], rpm) end
if tpm > 0 then tl = level(KEYS[2], tpm) end
if ARGV[3] == 'charge' then
  if tpm > 0 then
    tl = tl - tonumber(ARGV[4])
    if tl > tpm then tl = tpm end
    save(KEYS[2], tl, tpm)
  end
  return {1, tostring(rl), tostring(tl)}
end
if ARGV[3] == 'reserve' then
  if tl < tonumber(ARGV[4]) then return {0, tostring(rl), tostring(tl)} end
  tl = tl - tonumber(ARGV[4])
  save(KEYS[2], tl, tpm)
  return {1, tostring(rl), tostring(tl)}
end
local allowed = 1
if rpm > 0 and rl < 1 then allowed = 0 end
if tpm > 0 and tl <= 0 then allowed = 0 end
if allowed == 1 and rpm > 0 then
  rl = rl - 1
  save(KEYS[1], rl, rpm)
end
return {allowed, tostring(rl), tostring(tl)}
"""


def redis_address(url: str) -> str:
    """host:port of a Redis URL, for log lines (never the password)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def share(limit: int | None, fleet: int) -> int | None:
    """One process's part of a limit while Redis is away."""
    return max(1, limit // max(1, fleet)) if limit else limit


class RedisLimiter:
    def __init__(self, url: str, max_connections: int = 32, prefix: str = "slipway:") -> None:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # One immediate retry replaces a pooled connection that died while Redis was away; no backoff,
        # short timeouts: a slow Redis must cost a request milliseconds, not seconds. A bounded pool:
        # N processes x this many connections is what Redis sees at most (docs/production.md).
        self.member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        pool = BlockingConnectionPool.from_url(
            url,
            client_name=f"{prefix}{self.member}",  # CLIENT LIST shows whose connection it is
            max_connections=max_connections,
            timeout=1.0,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1),
        )
        self.client = Redis(connection_pool=pool)
        self.script = self.client.register_script(LUA)
        self.prefix = f"{prefix}rl:"
        self.fleet_key = f"{self.prefix}fleet"

    async def beat(self) -> int:
        """Say this process is alive; returns how many processes the fleet has now."""
        now = time.time()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(self.fleet_key, {self.member: now})
            pipe.zremrangebyscore(self.fleet_key, "-inf", now - FLEET_TTL_S)
            pipe.zcard(self.fleet_key)
            pipe.expire(self.fleet_key, int(FLEET_TTL_S * 2))
            result = await pipe.execute()
        return int(result[2])

    async def leave(self) -> None:
        await self.client.zrem(self.fleet_key, self.member)

    async def _run(self, key_id: str, rpm: int | None, tpm: int | None, op: str, tokens: int) -> list:
        keys = [f"{self.prefix}{key_id}:req", f"{self.prefix}{key_id}:tok"]
        args: list[int | str] = [rpm or 0, tpm or 0, op, tokens]
        try:
            return await self.script(keys=keys, args=args)
        except Exception:
            # Pooled connections may have died while Redis was away (and redis-py on uvloop reports that as
            # a RuntimeError it does not retry): drop them all and try once more on a fresh connection.
            await self.client.connection_pool.disconnect()
            return await self.script(keys=keys, args=args)

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Decision:
        allowed, requests, tokens = await self._run(key_id, rpm, tpm, "admit", 0)
        return Decision.from_levels(rpm, tpm, float(requests), float(tokens), bool(allowed))

    async def charge(self, key_id: str, tpm: int | None, tokens: int) -> None:
        if tpm and tokens != 0:
            await self._run(key_id, None, tpm, "charge", tokens)

    async def reserve(self, key_id: str, tpm: int, tokens: int) -> Decision:
        allowed, _, level = await self._run(key_id, None, tpm, "reserve", tokens)
        decision = Decision.from_levels(None, tpm, 0.0, float(level), bool(allowed))
        decision.tokens_needed = tokens
        return decision

    async def close(self) -> None:
        await self.client.aclose()


class SharedLimiter:
    """Redis first; this replica's own buckets while Redis cannot be reached."""

    def __init__(
        self, url: str, *, probe_s: float = PROBE_S, max_connections: int = 32, prefix: str = "slipway:"
    ) -> None:
        self.address = redis_address(url)
        self.redis = RedisLimiter(url, max_connections=max_connections, prefix=prefix)
        self.local = LocalLimiter()
        self.probe_s = probe_s
        self.healthy = True
        #: processes in the fleet when Redis last answered (this one included)
        self.fleet = 1
        self._next_probe = 0.0
        # Any failure falls back, not only RedisError: on a connection cut mid-write redis-py on uvloop
        # raises a bare RuntimeError ("the handler is closed"); a limiter fault must never be a 500.
        self._errors: tuple[type[BaseException], ...] = (Exception,)

    async def run_heartbeat(self) -> None:
        """The fleet size, kept fresh while Redis answers (a task for the process's lifetime)."""
        while True:
            try:
                self.fleet = max(1, await self.redis.beat())
            except asyncio.CancelledError:
                raise
            except self._errors:
                pass  # requests notice the outage and fall back; the last size seen stays
            await asyncio.sleep(HEARTBEAT_S)

    def _use_redis(self) -> bool:
        if self.healthy:
            return True
        now = time.monotonic()
        if now >= self._next_probe:
            self._next_probe = now + self.probe_s
            return True
        return False

    def _failed(self, exc: BaseException) -> None:
        if self.healthy:
            log.warning(
                "rate limits: Redis at %s is unreachable (%s); enforcing 1/%d of each limit locally "
                "(the processes last seen in the fleet) until it returns",
                self.address,
                type(exc).__name__,
                self.fleet,
            )
        self.healthy = False
        self._next_probe = time.monotonic() + self.probe_s

    def _succeeded(self) -> None:
        if not self.healthy:
            log.warning("rate limits: Redis at %s is reachable again; limits are shared across replicas", self.address)
        self.healthy = True

    async def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Decision:
        if self._use_redis():
            try:
                decision = await self.redis.admit(key_id, rpm, tpm)
            except self._errors as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return decision
        return await self.local.admit(key_id, share(rpm, self.fleet), share(tpm, self.fleet))

    async def charge(self, key_id: str, tpm: int | None, tokens: int) -> None:
        if self._use_redis():
            try:
                await self.redis.charge(key_id, tpm, tokens)
            except self._errors as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return
        await self.local.charge(key_id, share(tpm, self.fleet), tokens)

    async def reserve(self, key_id: str, tpm: int, tokens: int) -> Decision:
        if self._use_redis():
            try:
                decision = await self.redis.reserve(key_id, tpm, tokens)
            except self._errors as exc:
                self._failed(exc)
            else:
                self._succeeded()
                return decision
        part = share(tpm, self.fleet) or tpm
        return await self.local.reserve(key_id, part, min(tokens, part))

    async def close(self) -> None:
        try:
            if self.healthy:
                await self.redis.leave()
            await self.redis.close()
        except self._errors:
            pass

    def describe(self) -> tuple[bool, str]:
        if self.healthy:
            return True, f"redis {self.address} (shared by {self.fleet} processes)"
        return True, f"local: redis {self.address} unreachable; 1/{self.fleet} of each limit here"
