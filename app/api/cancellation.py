"""Stop work nobody waits for: race a coroutine against the client's `http.disconnect` (vLLM's
`with_cancellation`). Streaming responses get this from sse-starlette; non-streaming ones need it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


class ClientDisconnected(Exception):
    pass


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """`work`, awaited in this task; a watcher task cancels it when the client's `http.disconnect`
    arrives, and that becomes `ClientDisconnected`. One task per request beside the request's own
    (rather than `work` in a task of its own raced with `asyncio.wait`: two tasks and a waiter per
    request on the hot path; issue #18)."""
    task = asyncio.current_task()
    assert task is not None
    left = False

    async def watch() -> None:
        nonlocal left
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                left = True
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if left and task.uncancel() == 0:  # ours, not a shutdown's
            raise ClientDisconnected from None
        raise
    finally:
        watcher.cancel()
