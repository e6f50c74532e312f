"""A bounded queue in front of each model: N generations at once, at most `depth` waiting.

Why: a model that silently queues requests is the most reported gateway complaint. A full queue
answers 429 with Retry-After at once; a slot freed by a finished or cancelled request goes to the
next waiter immediately. Wait times are recorded for the metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.core.errors import Overloaded


class Slots:
    def __init__(self, *, name: str, concurrency: int, depth: int) -> None:
        self.name = name
        self.concurrency = concurrency
        self.depth = depth
        self._semaphore = asyncio.Semaphore(concurrency)
        self.waiting = 0
        self.active = 0
        self.last_wait_s = 0.0

    @property
    def full(self) -> bool:
        return self.waiting >= self.depth and self._semaphore.locked()

    def retry_after_s(self) -> int:
        return max(1, self.waiting // max(1, self.concurrency) + 1)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[float]:
        """Take a slot (or raise `Overloaded` at once); yields the seconds spent waiting."""
        if self._semaphore.locked() and self.waiting >= self.depth:
            raise Overloaded(
                f"model {self.name!r} is busy: {self.active} running and {self.waiting} waiting "
                f"(queue depth {self.depth}); retry shortly",
                headers={"Retry-After": str(self.retry_after_s())},
            )
        started = time.perf_counter()
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        waited = time.perf_counter() - started
        self.last_wait_s = waited
        self.active += 1
        try:
            yield waited
        finally:
            self.active -= 1
            self._semaphore.release()
