"""A bounded, fair queue in front of each model: N generations at once, at most `depth` waiting.

Why bounded: a model that silently queues requests is the most reported gateway complaint. A full
queue answers 429 with Retry-After at once; a slot freed by a finished or cancelled request goes to
the next waiter immediately.

Why fair: with one FIFO, a key that floods the queue makes every other key wait for its whole backlog
(four over-long requests from one key held another key's two-token answer for 55 s). Waiters are kept
per caller (the key, `app.core.caller`) and a freed slot goes round-robin between callers, callers
that have just arrived first (as fq_codel serves new flows): another key's request waits for the
generations already running plus at most one more, however deep the flood. A caller may also hold at
most `per_key_depth` places in the queue (default: half of it), so a flood cannot fill it alone and
another key always finds room.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.core.caller import CALLER
from app.core.errors import Overloaded


class Slots:
    def __init__(self, *, name: str, concurrency: int, depth: int, per_key_depth: int | None = None) -> None:
        self.name = name
        self.concurrency = concurrency
        self.depth = depth
        self.per_key_depth = per_key_depth if per_key_depth is not None else max(1, depth // 2)
        self._free = concurrency
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._new: deque[str] = deque()  # callers with waiters that have not been served since arriving
        self._old: deque[str] = deque()  # callers with more waiters after being served
        self._running: Counter[str] = Counter()  # slots held, per caller
        self.waiting = 0
        self.active = 0

    def retry_after_s(self) -> int:
        return max(1, self.waiting // max(1, self.concurrency) + 1)

    def _refuse(self, caller: str, queued: int) -> Overloaded:
        share = f"; this caller already has {queued} waiting" if queued >= self.per_key_depth else ""
        return Overloaded(
            f"model {self.name!r} is busy: {self.active} running and {self.waiting} waiting "
            f"(queue depth {self.depth}, {self.per_key_depth} per caller{share}); retry shortly",
            headers={"Retry-After": str(self.retry_after_s())},
        )

    @asynccontextmanager
    async def hold(self, caller: str | None = None) -> AsyncIterator[float]:
        """Take a slot (or raise `Overloaded` at once); yields the seconds spent waiting."""
        caller = caller if caller is not None else CALLER.get()
        started = time.perf_counter()
        if self._free > 0 and self.waiting == 0:
            self._free -= 1
        else:
            queued = len(self._waiters.get(caller, ()))
            if self.waiting >= self.depth or queued >= self.per_key_depth:
                raise self._refuse(caller, queued)
            await self._wait(caller)
        waited = time.perf_counter() - started
        self.active += 1
        self._running[caller] += 1
        try:
            yield waited
        finally:
            self.active -= 1
            self._running[caller] -= 1
            if not self._running[caller]:
                del self._running[caller]
            self._release()

    async def _wait(self, caller: str) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters.get(caller)
        if queue is None:
            queue = self._waiters[caller] = deque()
            # New to the queue and not generating: served before callers already being served.
            (self._old if self._running[caller] else self._new).append(caller)
        queue.append(granted)
        self.waiting += 1
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # the slot came just as the waiter left: pass it on
            else:
                self._forget(caller, granted)
            raise

    def _forget(self, caller: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiters.get(caller)
        if queue is not None and granted in queue:
            queue.remove(granted)
            self.waiting -= 1
            if not queue:
                del self._waiters[caller]
                for order in (self._new, self._old):
                    if caller in order:
                        order.remove(caller)

    def _release(self) -> None:
        """Hand the freed slot to the next caller in turn, or keep it free."""
        while self._new or self._old:
            order = self._new if self._new else self._old
            caller = order.popleft()
            queue = self._waiters[caller]
            granted = queue.popleft()
            self.waiting -= 1
            if queue:
                self._old.append(caller)
            else:
                del self._waiters[caller]
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1
