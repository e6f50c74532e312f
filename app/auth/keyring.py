"""The keys a running service accepts: static ones from settings plus the database's, kept in memory.

Why in memory: the request hot path must not query the database. The database's keys are loaded at
start-up and refreshed in the background (revocations take effect within `REFRESH_S`); a key the
ring does not know triggers one extra refresh (at most one per `MISS_REFRESH_S`, shared by all
callers), so a key created a moment ago works at once while a flood of wrong keys costs the
database at most one query per second. If the database is unreachable the last known keys stay in
force: an outage of the database does not lock every client out.

On a public bind (any address but loopback, without `SLIPWAY_ALLOW_NO_AUTH`) auth is required: it
never turns off, whatever the database says or fails to say. Until a key exists every request gets 401
saying how to create one. A database that answers late and empty (Compose: the app starts before
Postgres, nobody has created a key yet) used to turn auth off there; it cannot now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from app.auth.keys import Identity, hash_key, same_hash, static_identity
from app.core.config import Settings

log = logging.getLogger(__name__)

REFRESH_S = 5.0
MISS_REFRESH_S = 1.0


@dataclass(frozen=True)
class Snapshot:
    """What the database holds: whether any key row exists (revoked included) and the active keys by hash."""

    any_keys: bool
    active: dict[str, Identity] = field(default_factory=dict)


Loader = Callable[[], Awaitable[Snapshot]]


class KeyRing:
    def __init__(
        self,
        static_keys: Iterable[str],
        *,
        default_rpm: int | None,
        default_tpm: int | None,
        required: bool = False,
    ) -> None:
        self.required = required
        self._static = [(hash_key(key), static_identity(key, default_rpm, default_tpm)) for key in static_keys if key]
        self.default_rpm = default_rpm
        self.default_tpm = default_tpm
        self._db: dict[str, Identity] = {}
        self._db_any = False
        self._db_known = False
        self._loader: Loader | None = None
        self._last_refresh = float("-inf")
        self._inflight: asyncio.Future[None] | None = None
        self._db_failing = False

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls(
            (k.get_secret_value() for k in settings.api_keys),
            default_rpm=settings.default_rpm,
            default_tpm=settings.default_tpm,
            required=not settings.is_loopback_bind and not settings.allow_no_auth,
        )

    @property
    def enabled(self) -> bool:
        """Auth is on as soon as any key exists; revoking every database key does not open the service.

        Until the database has answered once, auth is on (fail closed): a database that is down at
        start-up must not open a service whose keys live in it. On a public bind, always on.
        """
        return self.required or bool(self._static) or self._db_any or (self._loader is not None and not self._db_known)

    def still_valid(self, identity: Identity) -> bool:
        """Whether a key accepted earlier is still accepted (a WebSocket re-checks while it stays open).
        Static keys cannot change while the process runs; a database key must still be active."""
        if identity.source != "database":
            return True
        return any(i.key_id == identity.key_id for i in self._db.values())

    @property
    def has_keys(self) -> bool:
        """Whether any key could be accepted right now (static, or active in the database)."""
        return bool(self._static) or bool(self._db)

    @property
    def has_database(self) -> bool:
        return self._loader is not None

    def attach(self, loader: Loader) -> None:
        self._loader = loader

    def lookup(self, key: str) -> Identity | None:
        """The identity for a presented key, without I/O.

        Static keys are few: every one is compared in constant time, none skipped. Database keys are
        found by their hash (an index lookup, as a database would do): the hash of a random 256-bit
        key reveals nothing that helps forge another.
        """
        digest = hash_key(key)
        found: Identity | None = None
        for stored, identity in self._static:
            if same_hash(stored, digest):
                found = identity
        if found is not None:
            return found
        return self._db.get(digest)

    async def resolve(self, key: str) -> Identity | None:
        """A key the ring does not know is looked up once more in the database, by a refresh that
        starts after it was presented: at most one per `MISS_REFRESH_S`, shared by every waiting caller,
        so a key created a moment ago works at once (after up to a second) and a flood of wrong keys
        costs one query per second."""
        identity = self.lookup(key)
        if identity is not None or self._loader is None:
            return identity
        missed_at = time.monotonic()
        wait_s = self._last_refresh + MISS_REFRESH_S - missed_at
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        if self._last_refresh < missed_at or self._inflight is not None:
            await self.refresh()
        return self.lookup(key)

    async def refresh(self) -> None:
        """Reload the database's keys; concurrent callers share one query."""
        if self._loader is None:
            return
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
            return
        self._inflight = asyncio.get_running_loop().create_future()
        self._last_refresh = time.monotonic()
        try:
            snapshot = await self._loader()
            self._db = {
                digest: Identity(
                    name=i.name,
                    key_id=i.key_id,
                    rpm=i.rpm if i.rpm is not None else self.default_rpm,
                    tpm=i.tpm if i.tpm is not None else self.default_tpm,
                    source="database",
                )
                for digest, i in snapshot.active.items()
            }
            self._db_any = snapshot.any_keys or self._db_any
            self._db_known = True
            if self._db_failing:
                log.warning("api keys: database reachable again; %d active keys", len(self._db))
            self._db_failing = False
        except Exception as exc:
            if not self._db_failing:
                log.warning("api keys: cannot read keys from the database (%s); keeping the last known keys", exc)
            self._db_failing = True
        finally:
            self._inflight.set_result(None)
            self._inflight = None

    async def run_refresher(self, interval_s: float = REFRESH_S) -> None:
        """Background task: pick up keys created or revoked by `python -m app keys` in another process."""
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()
