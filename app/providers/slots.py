"""A bounded, fair queue in front of each model: N generations at once, at most `depth` waiting.

Why bounded: a model that silently queues requests is the most reported gateway complaint. A full
queue answers 429 with Retry-After at once; a slot freed by a finished or cancelled request goes to
the next waiter immediately.

Why fair: with one FIFO, a key that floods the queue makes every other key wait for its whole backlog
(four over-long requests from one key held another key's two-token answer for 55 s). Waiters are kept
per caller (the key, `app.core.caller`) and a freed slot goes round-robin between callers, callers
that have just arrived first (as fq_codel serves new flows): another key's request waits for the
generations already running plus at most one more, however deep the flood. A single caller may use
the whole queue; when it is full and another caller arrives, the newest waiter of the caller with the
most waiters gives its place up (429, as fq_codel drops from the fattest flow), so a flood never
shuts another key out. `per_key_depth` optionally caps what one caller may hold.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

from app.core.caller import CALLER
from app.core.errors import Overloaded

#: The place a conversation turn reserved in a model's queue before taking its session lock (`place()`).
_PLACE: ContextVar[_Place | None] = ContextVar("slipway_queue_place", default=None)


class _Place:
    __slots__ = ("slots", "used")

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.used = False


class Slots:
    def __init__(self, *, name: str, concurrency: int, depth: int, per_key_depth: int | None = None) -> None:
        self.name = name
        self.concurrency = concurrency
        self.depth = depth
        self.per_key_depth = per_key_depth if per_key_depth is not None else depth
        self._free = concurrency
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._new: deque[str] = deque()  # callers with waiters that have not been served since arriving
        self._old: deque[str] = deque()  # callers with more waiters after being served
        self._running: Counter[str] = Counter()  # slots held, per caller
        self.waiting = 0
        self.active = 0
        self.reserved = 0  # places taken by `place()` and not yet turned into a wait or a slot

    def retry_after_s(self) -> int:
        return max(1, self.waiting // max(1, self.concurrency) + 1)

    def _refuse(self, caller: str, queued: int, why: str = "") -> Overloaded:
        share = f"; this caller already has {queued} waiting" if queued >= self.per_key_depth else ""
        return Overloaded(
            f"model {self.name!r} is busy: {self.active} running and {self.waiting} waiting "
            f"(queue depth {self.depth}{share}){why}; retry shortly",
            headers={"Retry-After": str(self.retry_after_s())},
        )

    def _make_room(self, caller: str, queued: int) -> bool:
        """The queue is full: take a place from the caller with the most waiters, if that is another
        caller with at least two more than this one. Its newest waiter gets 429."""
        fattest = max(self._waiters, key=lambda c: len(self._waiters[c]), default=None)
        if fattest is None or fattest == caller or len(self._waiters[fattest]) < queued + 2:
            return False
        displaced = self._waiters[fattest].pop()
        self.waiting -= 1
        if not self._waiters[fattest]:
            self._drop(fattest)
        if not displaced.done():
            displaced.set_exception(self._refuse(fattest, 0, ", and another caller needed a place"))
        return True

    @contextmanager
    def place(self) -> Iterator[None]:
        """Reserve a place in this queue for work that must do something slow before it asks for a slot:
        a conversation turn first takes its session lock, which on Postgres holds a pooled connection.
        Refused at once (429) when the queue has no room, so turns beyond the queue never touch the
        database pool (40 concurrent turns used to exhaust it: 503s for everyone). The `hold()` made
        within this block uses the place instead of asking again."""
        if self.active + self.waiting + self.reserved >= self.concurrency + self.depth:
            raise self._refuse(CALLER.get(), 0)
        place = _Place(self)
        self.reserved += 1
        token = _PLACE.set(place)
        try:
            yield
        finally:
            _PLACE.reset(token)
            if not place.used:
                self.reserved -= 1

    def _take_place(self) -> bool:
        place = _PLACE.get()
        if place is None or place.slots is not self or place.used:
            return False
        place.used = True
        self.reserved -= 1
        return True

    @asynccontextmanager
    async def hold(self, caller: str | None = None) -> AsyncIterator[float]:
        """Take a slot (or raise `Overloaded` at once); yields the seconds spent waiting."""
        caller = caller if caller is not None else CALLER.get()
        started = time.perf_counter()
        admitted = self._take_place()  # a reserved place is a promise: no capacity check again
        if self._free > 0 and self.waiting == 0:
            self._free -= 1
        else:
            queued = len(self._waiters.get(caller, ()))
            if not admitted and (
                queued >= self.per_key_depth
                or (self.waiting + self.reserved >= self.depth and not self._make_room(caller, queued))
            ):
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
        except Overloaded:
            raise  # displaced by another caller (`_make_room`): already out of the queue
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
                self._drop(caller)

    def _drop(self, caller: str) -> None:
        """A caller with no waiters left leaves the round."""
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
