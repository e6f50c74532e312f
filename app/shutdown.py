"""Graceful shutdown: on SIGTERM (or Ctrl-C) stop taking work, let streams finish, then stop them cleanly.

What happens, in order:
0. On SIGTERM with a delay set (`SLIPWAY_SHUTDOWN_DELAY_S`), `/readyz` answers 503 `draining` at once
   while the service goes on serving for the delay: a load balancer or Kubernetes takes the replica
   out of rotation before its listener closes, so no new connection is refused mid-rollout. Ctrl-C
   (SIGINT) and a second signal skip the delay.
1. uvicorn closes the listening socket at once (new connections are refused) and closes idle
   keep-alive connections; `/readyz` answers 503 `draining` to anything still asking.
2. In-flight requests and SSE streams go on for up to the grace period (`SLIPWAY_SHUTDOWN_GRACE_S`).
   sse-starlette's own drain, which would cut every stream the moment the signal arrives, is turned off.
3. Shortly before the grace period ends, generation stops at the next token (`Lifecycle.stop_generation`):
   each unfinished stream ends with an error event (`shutting_down`, 503) and `[DONE]`, waiting
   requests get a 503 with Retry-After, and every model slot is released; the services' own
   `finally` blocks run, so what they persist is complete, never half a message.
4. Any SSE response still open is then closed, and uvicorn cancels whatever is left at the deadline.

WebSockets are closed by uvicorn with 1012 (service restart) at step 1; clients reconnect.
Why chain the signal handler: uvicorn owns SIGTERM; the app has no other way to learn of it before
uvicorn's lifespan shutdown, which only runs after the connections have drained.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from app.core.lifecycle import Lifecycle
from app.providers.registry import ModelRegistry

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_margin_s(grace_s: float) -> float:
    """How long before uvicorn's deadline generation is stopped: enough for streams to end cleanly."""
    return min(1.0, grace_s * 0.2)


class Drain:
    def __init__(self, lifecycle: Lifecycle, registry: ModelRegistry, grace_s: float, delay_s: float = 0.0) -> None:
        self.lifecycle = lifecycle
        self.registry = registry
        # uvicorn is given int(grace) (app/__main__.py); aim at the deadline it really applies.
        self.grace_s = float(int(grace_s))
        self.delay_s = delay_s
        self.delaying = False
        self.started = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}
        self._task: asyncio.Task[None] | None = None

    def install_signal_handlers(self) -> bool:
        """Chain our handler in front of uvicorn's; only possible in the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self.loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue
            self._previous[sig] = previous
            signal.signal(sig, self._make_handler(previous))
        if self._previous:
            from sse_starlette.sse import AppStatus

            AppStatus.disable_automatic_graceful_drain()
        return bool(self._previous)

    def _make_handler(self, previous: Callable[..., Any]) -> Callable[[int, Any], None]:
        def handler(signum: int, frame: Any) -> None:
            loop = self.loop
            if loop is None or loop.is_closed():
                previous(signum, frame)
                return
            if signum == signal.SIGTERM and self.delay_s > 0 and not self.started and not self.delaying:
                self.delaying = True
                loop.call_soon_threadsafe(self.begin)
                loop.call_soon_threadsafe(loop.call_later, self.delay_s, self._stop_listening, previous, signum, frame)
                return
            self.delaying = False  # a second signal (or Ctrl-C) during the delay: stop listening now
            loop.call_soon_threadsafe(self.begin)
            previous(signum, frame)

        return handler

    def _stop_listening(self, previous: Callable[..., Any], signum: int, frame: Any) -> None:
        if self.delaying:  # not already done by a second signal
            self.delaying = False
            log.warning("shutdown: delay over; closing the listener")
            previous(signum, frame)

    def begin(self) -> None:
        if self.started:
            return
        self.started = True
        self.lifecycle.draining = True
        busy = self.registry.busy()
        if self.delaying:
            log.warning(
                "shutdown: not ready; serving %.1f s more before draining %d generation(s) for up to %.0f s",
                self.delay_s,
                busy,
                self.grace_s,
            )
        else:
            log.warning("shutdown: draining %d generation(s) for up to %.0f s", busy, self.grace_s)
        self._task = asyncio.ensure_future(self._stop_at_deadline(self.delay_s if self.delaying else 0.0))

    async def _stop_at_deadline(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s + max(0.0, self.grace_s - stop_margin_s(self.grace_s)))
        busy = self.registry.busy()
        if busy:
            log.warning("shutdown: grace period over; stopping %d generation(s)", busy)
        self.lifecycle.stop_generation = True
        await asyncio.sleep(min(0.5, stop_margin_s(self.grace_s) / 2))
        from sse_starlette.sse import AppStatus

        AppStatus.should_exit = True

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        if self._task is not None:
            self._task.cancel()
