"""One generation, whatever the provider: queue slot, timeouts, retries and fallbacks.

Every API (OpenAI-compatible, native sessions, WebSocket, chains) streams through `generate()`, so
backpressure, cancellation, retries and fallbacks behave the same everywhere. Retries and fallbacks
happen only before the first token: once text has reached a client, a failure ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage

from app.core.errors import APIError, ServiceUnavailable, UpstreamTimeout
from app.limits.ledger import release_tokens, reserve_tokens
from app.providers.base import Piece
from app.providers.failures import generic_classify, is_retryable
from app.providers.registry import ModelHandle, ModelRegistry
from app.services.history import estimate_tokens

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


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class Delta:
    text: str
    model: str


@dataclass(slots=True)
class Finished:
    finish_reason: str
    usage: Usage
    model: str
    queue_wait_s: float = 0.0
    attempts: int = 1
    fallback_from: str | None = None


@dataclass
class GenParams:
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def for_spec(self, handle: ModelHandle) -> dict[str, Any]:
        """Request values over the model entry's defaults, capped by the entry's limits."""
        defaults = handle.spec.params
        out: dict[str, Any] = {}
        for key in ("temperature", "top_p", "max_tokens", "stop", "seed"):
            value = getattr(self, key)
            out[key] = value if value is not None else getattr(defaults, key)
        cap = handle.spec.max_tokens_cap
        if cap:  # with no max_tokens anywhere the cap is the limit, or the answer would be unbounded
            out["max_tokens"] = min(out["max_tokens"], cap) if out["max_tokens"] else cap
        return {k: v for k, v in out.items() if v is not None}


def _finish_reason(metadata: dict[str, Any]) -> str | None:
    raw = metadata.get("finish_reason") or metadata.get("done_reason")
    if raw is None:
        return None
    raw = getattr(raw, "name", raw)
    return FINISH_REASONS.get(str(raw), FINISH_REASONS.get(str(raw).lower(), "stop"))


def _backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter (AWS's recipe): 0.25 s, 0.5 s, 1 s... capped at 8 s."""
    return random.uniform(0, min(8.0, 0.25 * 2**attempt))  # noqa: S311 - jitter, not crypto


async def _attempt(
    handle: ModelHandle, messages: Sequence[BaseMessage], params: dict[str, Any], settings: Any
) -> AsyncIterator[Delta | Finished]:
    """Stream one model once: timeouts enforced, the model's stream closed whatever happens."""
    if handle.chat_model is None or handle.state in ("not_configured",):
        raise ServiceUnavailable(
            handle.detail or f"model {handle.name!r} is not configured", code="provider_not_configured"
        )
    if handle.state == "loading":
        raise ServiceUnavailable(f"model {handle.name!r} is still loading; retry shortly", headers={"Retry-After": "5"})
    spec = handle.spec
    kwargs = handle.provider.call_kwargs(params) if handle.provider.call_kwargs else params
    first_timeout = spec.first_token_timeout_s or settings.default_first_token_timeout_s
    total_timeout = spec.timeout_s or settings.default_timeout_s
    loop = asyncio.get_running_loop()
    started = loop.time()
    usage = Usage()
    finish: str | None = None
    stream = (
        handle.wire.stream(messages, kwargs)
        if handle.wire is not None
        else _pieces(handle.chat_model.astream(list(messages), **kwargs))
    )
    got_token = False
    deadline = started + min(first_timeout, total_timeout)
    try:
        while True:
            # The deadline is applied to each wait for a chunk, in whichever task is consuming: a
            # streamed response pulls its first event in one task and the rest in another, and an
            # `asyncio.timeout` around the whole loop would only ever cancel the first.
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            try:
                async with asyncio.timeout(remaining):
                    piece = await anext(stream)
            except StopAsyncIteration:
                break
            text = piece.text
            usage.prompt_tokens += piece.prompt_tokens or 0
            usage.completion_tokens += piece.completion_tokens or 0
            reason = _finish_reason({"finish_reason": piece.finish_reason})
            if reason:
                finish = reason
            if text:
                if not got_token:
                    got_token = True
                    deadline = started + total_timeout
                yield Delta(text=text, model=handle.name)
    except TimeoutError:
        phase = "the total" if got_token else "the first-token"
        timeout_error = UpstreamTimeout(
            f"model {handle.name!r} exceeded {phase} timeout "
            f"({total_timeout if got_token else min(first_timeout, total_timeout):g} s)"
        )
        timeout_error.retryable = True  # type: ignore[attr-defined]  # before the first token: retry, fall back
        raise timeout_error from None
    finally:
        await stream.aclose()
    yield Finished(finish_reason=finish or "stop", usage=usage, model=handle.name)


async def _pieces(chunks: AsyncIterator[Any]) -> AsyncIterator[Piece]:
    """LangChain message chunks as the pieces `_attempt` reads (the wire clients yield these directly)."""
    try:
        async for chunk in chunks:
            usage = chunk.usage_metadata or {}
            metadata = chunk.response_metadata or {}
            yield Piece(
                text=chunk.content if isinstance(chunk.content, str) else chunk.text,
                finish_reason=metadata.get("finish_reason") or metadata.get("done_reason"),
                prompt_tokens=usage.get("input_tokens"),
                completion_tokens=usage.get("output_tokens"),
            )
    finally:
        await chunks.aclose()


class StreamStarted(Exception):
    """A failure after the first token: no retry, no fallback; the stream ends with an error."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.message)
        self.error = error


async def generate(
    registry: ModelRegistry,
    model: str | None,
    messages: Sequence[BaseMessage],
    params: GenParams,
    *,
    on_retry: Any = None,
    on_fallback: Any = None,
    on_slot: Any = None,
    on_first_token: Any = None,
    on_finish: Any = None,
    on_error: Any = None,
) -> AsyncIterator[Delta | Finished]:
    """Text deltas then one `Finished`; raises `APIError` before the first token, `StreamStarted` after.

    Hooks (metrics, rate limits; `registry.generation_hooks`): on_slot(model, waited_s),
    on_first_token(model, seconds since the call), on_finish(Finished), on_error(model, APIError).
    When `registry.stopping` is set (graceful shutdown's deadline), generation stops at the next token.
    """
    started = time.perf_counter()
    primary = registry.get(model)
    worst_case = estimate_tokens(messages) + (params.for_spec(primary).get("max_tokens") or RESERVE_MAX_TOKENS)
    reserved = await reserve_tokens(worst_case)  # once: a key's 429 is not a reason to fall back
    try:
        async for event in _generate(registry, primary, messages, params, started, on_retry=on_retry,
                                     on_fallback=on_fallback, on_slot=on_slot, on_first_token=on_first_token,
                                     on_finish=on_finish, on_error=on_error):  # fmt: skip
            yield event
    finally:
        release_tokens(reserved)


async def _generate(
    registry: ModelRegistry,
    primary: ModelHandle,
    messages: Sequence[BaseMessage],
    params: GenParams,
    started: float,
    *,
    on_retry: Any,
    on_fallback: Any,
    on_slot: Any,
    on_first_token: Any,
    on_finish: Any,
    on_error: Any,
) -> AsyncIterator[Delta | Finished]:
    first_token = True
    candidates = [primary, *(registry.get(name) for name in primary.spec.fallbacks)]
    last_error: APIError | None = None
    for index, handle in enumerate(candidates):
        if index and on_fallback:
            on_fallback(primary.name, handle.name)
        attempts = handle.spec.retries + 1
        for attempt in range(attempts):
            emitted = False
            pieces, charged = 0, False
            try:
                _check_stopping(registry)
                if attempt == 0:
                    await _preflight(handle, messages)
                async with handle.slots.hold() as waited:
                    if on_slot:
                        on_slot(handle.name, waited)
                    _check_stopping(registry)
                    attempt_events = _attempt(handle, messages, params.for_spec(handle), registry.settings)
                    async with contextlib.aclosing(attempt_events):
                        try:
                            async for event in attempt_events:
                                if isinstance(event, Finished):
                                    event.queue_wait_s = waited
                                    event.attempts = attempt + 1
                                    event.fallback_from = primary.name if index else None
                                    charged = True
                                    if on_finish:
                                        on_finish(event)
                                else:
                                    pieces += 1
                                    _check_stopping(registry)
                                    if first_token:
                                        first_token = False
                                        if on_first_token:
                                            on_first_token(handle.name, time.perf_counter() - started)
                                emitted = True
                                yield event
                        finally:
                            if pieces and not charged and on_finish:
                                # Cut short (client gone, cancelled, failed mid-answer, shut down): what was
                                # generated still counts against the key's tokens per minute, estimated.
                                on_finish(_cut_short(handle, messages, pieces))
                _observe(handle, None)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _classify(handle, exc, registry)
                _observe(handle, error)
                if on_error:
                    on_error(handle.name, error)
                if emitted:
                    raise StreamStarted(error) from None
                last_error = error
                if not is_retryable(error):
                    break
                if attempt + 1 < attempts:
                    if on_retry:
                        on_retry(handle.name)
                    delay = _backoff_s(attempt)
                    log.warning(
                        "model %s failed (%s); retry %d in %.2fs", handle.name, error.message, attempt + 1, delay
                    )
                    await asyncio.sleep(delay)
        if last_error is not None and not _may_fall_back(last_error):
            break
    assert last_error is not None
    raise last_error


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


def _check_stopping(registry: ModelRegistry) -> None:
    if getattr(registry, "stopping", False):
        raise ServiceUnavailable(
            "The server is shutting down; retry the request.", code="shutting_down", headers={"Retry-After": "1"}
        )


def _observe(handle: ModelHandle, error: APIError | None) -> None:
    """Remember how a remote model last did, for /readyz and /v1/models (never blocks requests).

    In-process models keep the state their loading gave them; a remote one is `unavailable` with the
    reason after it could not be reached, and `ready` again after its next success.
    """
    if handle.provider.in_process or handle.state not in ("ready", "unavailable"):
        return
    if error is None:
        handle.state, handle.detail = "ready", None
    elif error.status_code in (503, 504) and getattr(error, "code", None) != "model_overloaded":
        handle.state, handle.detail = "unavailable", error.message


def _may_fall_back(error: APIError) -> bool:
    """The model failed, not the request: unreachable, timed out, overloaded, 5xx, not configured."""
    return is_retryable(error) or error.status_code == 429 or error.status_code >= 500


def _classify(handle: ModelHandle, exc: BaseException, registry: ModelRegistry) -> APIError:
    if isinstance(exc, APIError):
        return exc
    classify = handle.provider.classify
    error = classify(exc, handle.spec, registry.settings) if classify else None
    if error is None:
        error = generic_classify(exc, handle.spec, handle.spec.base_url)
    log.warning("model %s: %s", handle.name, error.message)
    return error


async def collect(events: AsyncIterator[Delta | Finished]) -> tuple[str, Finished]:
    """The whole answer; a failure after the first token is the same error as before it (nothing was sent)."""
    parts: list[str] = []
    finished: Finished | None = None
    try:
        async for event in events:
            if isinstance(event, Delta):
                parts.append(event.text)
            else:
                finished = event
    except StreamStarted as exc:
        raise exc.error from None
    assert finished is not None
    return "".join(parts), finished


def monotonic() -> float:
    return time.perf_counter()
