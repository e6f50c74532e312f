"""One generation, whatever the provider: queue slot, timeouts, retries and fallbacks.

Every API (OpenAI-compatible, native sessions, WebSocket, chains) streams through
`Generator.generate()`, so backpressure, cancellation, retries and fallbacks behave the same
everywhere. Retries and fallbacks happen only before the first token: once text has reached a client,
a failure ends the stream.

The steps, in order: reserve the key's tokens and try each candidate model (`generate`), each attempt
(`_attempts`) refused early by the model's preflight, run in a queue slot reading the model's stream
under its timeouts (`_in_slot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage

from app.core.config import Settings
from app.core.errors import APIError, ServiceUnavailable, UpstreamTimeout
from app.core.lifecycle import Lifecycle
from app.core.output import TEXT, OutputSpec
from app.core.sampling import Sampling
from app.limits.ledger import release_tokens, reserve_tokens
from app.providers.base import Stream
from app.providers.failures import generic_classify
from app.providers.registry import ModelHandle, ModelRegistry
from app.services.events import Delta, Event, Finished, StreamStarted, Usage
from app.services.history import estimate_tokens
from app.services.hooks import GenerationHooks

log = logging.getLogger(__name__)

#: The answer length a token reservation assumes when neither the request nor the model entry sets
#: max_tokens (released and settled to the real usage when the generation ends).
RESERVE_MAX_TOKENS = 1024

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "end_turn": "stop",
    "max_tokens": "length",
    "content_filter": "content_filter",
    "cancelled": "cancelled",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    # Gemini
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def params_for(handle: ModelHandle, params: Sampling) -> dict[str, Any]:
    """Request values over the model entry's defaults, capped by the entry's limits."""
    out = params.over(handle.spec.params)
    cap = handle.spec.max_tokens_cap
    if cap:  # with no max_tokens anywhere the cap is the limit, or the answer would be unbounded
        out["max_tokens"] = min(out["max_tokens"], cap) if out.get("max_tokens") else cap
    return out


def finish_reason(raw: Any) -> str | None:
    if raw is None:
        return None
    raw = getattr(raw, "name", raw)
    return FINISH_REASONS.get(str(raw), FINISH_REASONS.get(str(raw).lower(), "stop"))


def _backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter (AWS's recipe): 0.25 s, 0.5 s, 1 s... capped at 8 s."""
    return random.uniform(0, min(8.0, 0.25 * 2**attempt))  # noqa: S311 - jitter, not crypto


class Generator:
    """`generate()` over the registry's models, reporting to `hooks`, stopping when `lifecycle` says."""

    def __init__(
        self, registry: ModelRegistry, hooks: GenerationHooks | None = None, lifecycle: Lifecycle | None = None
    ) -> None:
        self.registry = registry
        self.hooks = hooks or GenerationHooks()
        self.lifecycle = lifecycle or Lifecycle()

    @property
    def settings(self) -> Settings:
        return self.registry.settings

    async def generate(
        self, model: str | None, messages: Sequence[BaseMessage], params: Sampling, output: OutputSpec = TEXT
    ) -> AsyncGenerator[Event, None]:
        """Text deltas then one `Finished`; raises `APIError` before the first token, `StreamStarted` after.

        The key's tokens are reserved once, for the worst case, and released at the end (a key's 429 is
        not a reason to fall back).
        """
        primary = self.registry.chat(model)
        worst_case = estimate_tokens(messages) + (params_for(primary, params).get("max_tokens") or RESERVE_MAX_TOKENS)
        reserved = await reserve_tokens(worst_case)
        try:
            # The candidates: the primary model, then its fallbacks while the failure is the model's,
            # not the request's. (In this generator rather than one of its own: every event passes
            # through each generator layer, a frame switch apiece; issue #18.)
            call = _Call(messages, params, output)
            clock = _FirstToken(time.perf_counter())
            candidates = [primary, *(self.registry.get(name) for name in primary.spec.fallbacks)]
            last_error: APIError | None = None
            for index, handle in enumerate(candidates):
                if index:
                    self.hooks.fallback(primary.name, handle.name)
                try:
                    # Every nested generator is closed explicitly (`aclosing`): a client that leaves must
                    # free its queue slot now, not when the garbage collector finalizes it.
                    async with contextlib.aclosing(self._attempts(handle, call, clock)) as events:
                        async for event in events:
                            if index and isinstance(event, Finished):
                                event.fallback_from = primary.name
                            yield event
                    return
                except _Failed as failed:
                    last_error = failed.error
                    if not _may_fall_back(last_error):
                        break
            assert last_error is not None
            raise last_error
        finally:
            release_tokens(reserved)

    async def _attempts(self, handle: ModelHandle, call: _Call, clock: _FirstToken) -> AsyncGenerator[Event, None]:
        """One model, retried with backoff (`retries` in its entry) while the failure is retryable."""
        attempts = handle.spec.retries + 1
        for attempt in range(attempts):
            emitted = False
            try:
                self._check_stopping()
                if attempt == 0:
                    await _preflight(handle, call.messages)
                async with contextlib.aclosing(self._in_slot(handle, call, clock)) as events:
                    async for event in events:
                        emitted = True
                        yield event
                _observe(handle, None)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = self._classify(handle, exc)
                _observe(handle, error)
                self.hooks.error(handle.name, error)
                if emitted:
                    raise StreamStarted(error) from None
                if not error.retryable or attempt + 1 == attempts:
                    raise _Failed(error) from None
                self.hooks.retry(handle.name)
                delay = _backoff_s(attempt)
                log.warning("model %s failed (%s); retry %d in %.2fs", handle.name, error.message, attempt + 1, delay)
                await asyncio.sleep(delay)

    async def _in_slot(self, handle: ModelHandle, call: _Call, clock: _FirstToken) -> AsyncGenerator[Event, None]:
        """One attempt in one of the model's queue slots: the model's stream read once under its
        timeouts and closed whatever happens; usage reported even when cut short.

        The slot and the read are one generator, not two, for the same reason as the candidates loop
        in `generate()`: each layer costs a frame switch per event."""
        pieces, charged = 0, False
        name = handle.name
        async with handle.slots.hold() as slot_wait:
            self.hooks.slot(name, slot_wait)
            self._check_stopping()
            try:
                stream = _ready(handle).stream(call.messages, params_for(handle, call.params), call.output)
                deadline = _Deadline(handle, self.settings)
                timer = _Timer(deadline)
                usage = Usage()
                finish: str | None = None
                perf, waited = time.perf_counter, self.hooks.waited  # the overhead header subtracts the waits
                try:
                    while True:
                        started = perf()
                        try:
                            piece = await timer.next(stream)
                        except StopAsyncIteration:
                            waited(name, perf() - started)
                            break
                        waited(name, perf() - started)
                        if piece.prompt_tokens:
                            usage.prompt_tokens += piece.prompt_tokens
                        if piece.completion_tokens:
                            usage.completion_tokens += piece.completion_tokens
                        if piece.finish_reason is not None:
                            finish = finish_reason(piece.finish_reason) or finish
                        if piece.text or piece.tool_calls or piece.logprobs:
                            if not deadline.first_token:
                                deadline.got_token()
                                timer.reschedule()
                            pieces += 1
                            self._check_stopping()
                            seconds = clock.first()
                            if seconds is not None:
                                self.hooks.first_token(name, seconds)
                            yield Delta(
                                text=piece.text, model=name, tool_calls=piece.tool_calls, logprobs=piece.logprobs
                            )
                except TimeoutError:
                    raise deadline.error() from None
                finally:
                    timer.cancel()
                    await stream.aclose()  # type: ignore[attr-defined]  # an async generator underneath
                finished = Finished(finish_reason=finish or "stop", usage=usage, model=name)
                charged = True
                self.hooks.finished(finished, empty=pieces == 0)
                yield finished
            finally:
                if pieces and not charged:
                    # Cut short (client gone, cancelled, failed mid-answer, shut down): what was
                    # generated still counts against the key's tokens per minute, estimated.
                    self.hooks.finished(_cut_short(handle, call.messages, pieces))

    def _check_stopping(self) -> None:
        if self.lifecycle.stop_generation:
            raise ServiceUnavailable(
                "The server is shutting down; retry the request.", code="shutting_down", headers={"Retry-After": "1"}
            )

    def _classify(self, handle: ModelHandle, exc: BaseException) -> APIError:
        if isinstance(exc, APIError):
            return exc
        error = handle.provider.classify(exc, handle.spec, self.settings)
        if error is None:
            error = generic_classify(exc, handle.spec, handle.spec.base_url)
        log.warning("model %s: %s", handle.name, error.message)
        return error


def _ready(handle: ModelHandle) -> Stream:
    """The model's stream, or 503 while it is not configured or still loading."""
    if handle.stream is None or handle.state == "not_configured":
        raise ServiceUnavailable(
            handle.detail or f"model {handle.name!r} is not configured", code="provider_not_configured"
        )
    if handle.state == "loading":
        raise ServiceUnavailable(f"model {handle.name!r} is still loading; retry shortly", headers={"Retry-After": "5"})
    return handle.stream


class _Deadline:
    """The first-token timeout until the first token, then the total timeout, both from the start."""

    def __init__(self, handle: ModelHandle, settings: Settings) -> None:
        spec = handle.spec
        self.name = handle.name
        self.total_s = spec.timeout_s or settings.default_timeout_s
        self.first_s = min(spec.first_token_timeout_s or settings.default_first_token_timeout_s, self.total_s)
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.first_token = False

    def at(self) -> float:
        """When the current phase ends, in the loop's clock."""
        return self.started + (self.total_s if self.first_token else self.first_s)

    def got_token(self) -> None:
        self.first_token = True

    def error(self) -> UpstreamTimeout:
        phase, limit = ("the total", self.total_s) if self.first_token else ("the first-token", self.first_s)
        error = UpstreamTimeout(f"model {self.name!r} exceeded {phase} timeout ({limit:g} s)")
        error.retryable = not self.first_token  # before the first token: retry, fall back
        return error


class _Timer:
    """A read's deadline as one timer, cancelling whichever task is waiting for the model's next piece
    when it fires. The waiting task changes within a read (a streamed response pulls its first event in
    one task and the rest in another), so an `asyncio.timeout` around the whole loop would only ever
    cancel the first; one `asyncio.timeout` per piece was right but was the largest own cost of the
    read loop in the profile (a timer armed and disarmed per chunk). This arms one timer per phase."""

    def __init__(self, deadline: _Deadline) -> None:
        self.deadline = deadline
        self.expired = False
        self.waiting: asyncio.Task[Any] | None = None
        self.handle = deadline.loop.call_at(deadline.at(), self._fire)

    def _fire(self) -> None:
        self.expired = True
        if self.waiting is not None:
            self.waiting.cancel()

    def reschedule(self) -> None:
        """The phase changed (first token): the total timeout applies from now on."""
        self.handle.cancel()
        self.handle = self.deadline.loop.call_at(self.deadline.at(), self._fire)

    def cancel(self) -> None:
        self.handle.cancel()

    async def next(self, stream: Any) -> Any:
        """The stream's next piece, or TimeoutError once the deadline has passed."""
        if self.expired:
            raise TimeoutError
        # With the loop named, `current_task` skips `get_running_loop()`, which on CPython 3.11 makes a
        # getpid() system call (its fork check): once per piece otherwise.
        task = asyncio.current_task(self.deadline.loop)
        self.waiting = task
        try:
            return await anext(stream)
        except asyncio.CancelledError:
            # Ours (the deadline) rather than someone else's (the client left, shutdown): as
            # `asyncio.timeout` does, the cancellation is taken back and becomes a TimeoutError.
            if self.expired and task is not None and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self.waiting = None


@dataclass(frozen=True)
class _Call:
    """What one generation asks of whichever model answers it."""

    messages: Sequence[BaseMessage]
    params: Sampling
    output: OutputSpec


class _Failed(Exception):
    """A model failed before its first token (retries spent): the next candidate may be tried."""

    def __init__(self, error: APIError) -> None:
        self.error = error


class _FirstToken:
    """Seconds from the call to the first token of the whole generation (fallbacks included), once."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.seen = False

    def first(self) -> float | None:
        if self.seen:
            return None
        self.seen = True
        return time.perf_counter() - self.started


async def _preflight(handle: ModelHandle, messages: Sequence[BaseMessage]) -> None:
    """Work that may refuse the request, done before it takes a slot and off the event loop: an
    in-process model templates and tokenises the prompt and refuses one over its context window (400),
    so a hostile prompt never holds the model while it fails."""
    check = getattr(handle.chat_model, "checked_prompt", None)
    if check is not None and handle.state == "ready":
        await asyncio.to_thread(check, list(messages))


def _cut_short(handle: ModelHandle, messages: Sequence[BaseMessage], pieces: int) -> Finished:
    """Usage of an answer that never reached its end (no usage from the upstream): one token per
    streamed piece (exact for the local model, usual for OpenAI-compatible servers), and the prompt by
    the documented estimate of `app.services.history`."""
    usage = Usage(prompt_tokens=estimate_tokens(messages), completion_tokens=pieces)
    return Finished(finish_reason="cancelled", usage=usage, model=handle.name)


def _observe(handle: ModelHandle, error: APIError | None) -> None:
    """Remember how a remote model last did, for /readyz and /v1/models (never blocks requests).

    In-process models keep the state their loading gave them; a remote one is `unavailable` with the
    reason after it could not be reached, and `ready` again after its next success.
    """
    if handle.provider.in_process or handle.state not in ("ready", "unavailable"):
        return
    if error is None:
        handle.state, handle.detail = "ready", None
    elif error.status_code in (503, 504) and error.code != "model_overloaded":
        handle.state, handle.detail = "unavailable", error.message


def _may_fall_back(error: APIError) -> bool:
    """The model failed, not the request: unreachable, timed out, overloaded, 5xx, not configured."""
    return error.retryable or error.status_code == 429 or error.status_code >= 500
