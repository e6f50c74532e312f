"""Waiting (bounded) for a stream's first event before a streaming response starts.

Once a 200 and its headers are sent, a failure can only be an error event inside the stream. So the
streaming endpoints (chat completions, chains, conversation turns) first wait for the first event, up
to the keep-alive interval: a request that fails at once (unknown model, queue full, upstream down)
gets its real status, and a slow one starts streaming pings instead of holding the client's headers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Generic, TypeVar

T = TypeVar("T")


class FirstEvent(Generic[T]):
    """`events`, with the first one waited for by `wait()`; iterate to get every event, that one included."""

    def __init__(self, events: AsyncIterator[T]) -> None:
        self.events = events
        self.first: T | None = None
        self._got_first = False
        self._exhausted = False
        self._pending: asyncio.Future[T] | None = None

    async def wait(self, timeout_s: float) -> None:
        """Raise what the stream raised if it failed within `timeout_s`; otherwise return (the wait
        goes on inside the iteration)."""
        self._pending = asyncio.ensure_future(anext(self.events))
        done, _ = await asyncio.wait({self._pending}, timeout=timeout_s)
        if not done:
            return
        task, self._pending = self._pending, None
        try:
            self.first = task.result()
            self._got_first = True
        except StopAsyncIteration:
            self._exhausted = True

    def __aiter__(self) -> FirstEvent[T]:
        return self

    def __anext__(self) -> Awaitable[T]:
        """The first event (waited for, or kept by `wait()`), then the stream's own `__anext__`: past
        the first event this iterator adds no frame per event (issue #18)."""
        if self._pending is not None or self._got_first or self._exhausted:
            return self._first()
        return self.events.__anext__()

    async def _first(self) -> T:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return await pending  # StopAsyncIteration, if the stream had nothing, ends the iteration
        if self._got_first:
            self._got_first = False
            return self.first  # type: ignore[return-value]
        raise StopAsyncIteration

    async def cancel(self) -> None:
        """The client left before the body started: stop waiting for the first event."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
