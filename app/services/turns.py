"""One turn of a conversation, run in a task of its own so that nothing is lost or mixed up.

Order of events (the guarantees the API documents):
1. Wait for the session's turn lock (`storage.locks`): turns of one session run one after the other,
   in arrival order, across replicas too. A client that leaves while waiting leaves nothing behind.
2. Read the conversation, fit it to the context window (413 if the new message cannot fit), then
   commit the user message (one transaction) before generation starts.
3. Generate through `generation.generate()` (queue slots, timeouts, retries, fallbacks), passing each
   text delta to whoever consumes the turn.
4. Commit the answer (one transaction) with its usage, latency and the model that answered. If the
   generation failed, was cancelled (`cancel()`: the client sent cancel, closed the socket or left
   the HTTP request) or the server is shutting down, what was generated so far is committed with
   `status = incomplete` and the reason in `error`. A question left unanswered by a turn whose process
   died (SIGKILL, a lost node) gets an empty `incomplete` answer (`interrupted`) from the next turn on
   that session, on whichever replica, before that turn stores its own question.

Regenerating (`regenerate=True`) answers the conversation's last question again with the history before
it: no new question is stored, and the new answer replaces the previous one in the transaction that
stores it (complete, or partial when stopped or failed mid-answer). A regeneration that produced no
text at all (it failed, or was stopped, before its first token) stores nothing and leaves the previous
answer where it was: an upstream outage never costs the user an answer they had.

Sampling: the session's temperature and max_tokens (NULL: the model entry's defaults).

The task belongs to the service, not to the request: a request that is cancelled only asks the turn
to stop, and the turn still stores its partial answer and releases the lock before it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.errors import APIError, GenerationError, InvalidRequest, ServiceUnavailable
from app.core.sampling import Sampling
from app.protocol.frames import delta_frame, done_frame
from app.protocol.sessions import MessageOut
from app.providers.registry import ModelHandle, ModelRegistry
from app.services.events import Delta, Finished, StreamStarted
from app.services.generation import Generator, params_for
from app.services.history import budget_for, counter_for, fit_history
from app.services.transcript import conversation, message_out, not_found, to_messages
from app.storage import repo
from app.storage.locks import SessionLocks
from app.storage.repo import SessionRow

log = logging.getLogger(__name__)

Phase = Literal["waiting", "preparing", "generating", "storing", "done"]


@dataclass(frozen=True)
class TurnDone:
    """The stored answer (complete, or incomplete after a cancel) and the user message it answers."""

    message: MessageOut
    user_message_id: int
    #: A regeneration: the previous answer, deleted when this one was stored.
    replaced: int | None = None

    @property
    def usage(self) -> dict[str, int] | None:
        return self.message.usage.model_dump() if self.message.usage else None


def turn_frame(event: Delta | TurnDone) -> dict[str, Any]:
    """A turn's event as its stream frame (`app.protocol.frames`), on SSE and the WebSocket alike."""
    if isinstance(event, Delta):
        return delta_frame(event.text)
    frame = done_frame(event.message, event.user_message_id)
    if event.replaced is not None:
        frame["replaced_message_id"] = event.replaced
    return frame


async def _close_interrupted(conn: AsyncConnection, session_id: str, question: repo.MessageRow) -> repo.MessageRow:
    """A question stored with no answer after it, found while holding the session's lock: the turn that
    stored it died with its process (SIGKILL, a lost node) before storing its answer. Mark that answer
    incomplete (`interrupted`) so the history says what happened and the next answer follows it."""
    log.warning("session %s: the previous turn ended with its process; marking its answer interrupted", session_id)
    return await repo.add_message(
        conn,
        session_id=session_id,
        role="assistant",
        content="",
        status="incomplete",
        reply_to=question.id,
        finish_reason="error",
        error="interrupted",
    )


class TurnFailed(Exception):
    """Generation failed; the partial answer (possibly empty) is stored as `message_id`."""

    def __init__(self, error: APIError, message_id: int | None, user_message_id: int | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.message_id = message_id
        self.user_message_id = user_message_id


_END = object()


@dataclass
class _Outcome:
    """What one generation of a turn came to (`Turn._generate`)."""

    answered_by: str
    parts: list[str] = field(default_factory=list)
    finished: Finished | None = None
    error: APIError | None = None
    latency_ms: int = 0


class TurnHost(Protocol):
    """What a turn uses of the conversation service that starts it (`sessions.SessionService`)."""

    generator: Generator
    registry: ModelRegistry
    locks: SessionLocks
    turns: set[Turn]

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    def queue_place(self, model: str | None) -> AbstractContextManager[None]: ...

    def system_message(self, session: SessionRow) -> SystemMessage | None: ...


class Turn:
    def __init__(
        self,
        service: TurnHost,
        *,
        identity: str,
        session_id: str,
        content: str = "",
        model: str | None = None,
        regenerate: bool = False,
    ) -> None:
        self.service = service
        self.identity = identity
        self.session_id = session_id
        self.content = content
        self.session_model = model
        self.regenerate = regenerate
        self.sampling = Sampling()
        self._question: repo.MessageRow | None = None  # regenerating: the stored question answered again
        self._previous: repo.MessageRow | None = None  # regenerating: the answer the new one replaces
        self._replaced: int | None = None  # its id, once the new answer is stored in its place
        self.phase: Phase = "waiting"
        self.task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._gen_task: asyncio.Task[Finished | None] | None = None
        self._stop_reason: str | None = None

    # -- consumer side --------------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"turn-{self.session_id}")
        self.service.turns.add(self)
        self.task.add_done_callback(lambda _t: self.service.turns.discard(self))

    async def events(self) -> AsyncIterator[Delta | TurnDone]:
        """Deltas, then one `TurnDone`; raises `TurnFailed` or `APIError` (before anything was stored)."""
        while True:
            item = await self._queue.get()
            if item is _END:  # the turn's task was stopped from outside (server shutdown)
                raise ServiceUnavailable("The server stopped this turn; retry.", code="shutting_down")
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
            if isinstance(item, TurnDone):
                return

    async def result(self) -> TurnDone:
        done: TurnDone | None = None
        async for event in self.events():
            if isinstance(event, TurnDone):
                done = event
        assert done is not None
        return done

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop this turn: generation ends at the next token and the partial answer is stored."""
        if self.phase in ("storing", "done") or self._stop_reason is not None:
            return  # the answer is being stored already: nothing left to stop
        self._stop_reason = reason
        if self.phase == "waiting" and self.task is not None:
            self.task.cancel()  # nothing stored yet: simply leave the queue
        elif self._gen_task is not None:
            self._gen_task.cancel()

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.wait({self.task})

    # -- the turn -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            # A place in the model's queue first: a turn that would not fit gets 429 before its session
            # lock takes a pooled database connection.
            with self.service.queue_place(self.session_model):
                async with self.service.locks.hold(self.session_id):
                    if self._stop_reason is not None:
                        return
                    self.phase = "preparing"
                    await self._turn()
        except asyncio.CancelledError:
            if self.phase != "waiting":
                raise
            reason = self._stop_reason or "cancelled"
            self._queue.put_nowait(
                APIError(
                    f"The turn was stopped ({reason}) before it started; nothing was stored.",
                    code="cancelled",
                    status_code=499,
                )
            )
        except (APIError, TurnFailed) as exc:
            self._queue.put_nowait(exc)
        except Exception as exc:
            log.exception("turn failed")
            self._queue.put_nowait(GenerationError(f"The turn failed ({type(exc).__name__})."))
        finally:
            self.phase = "done"
            self._queue.put_nowait(_END)

    async def _turn(self) -> None:
        """Read and fit the history, store the question, generate, store the answer: in that order."""
        handle, messages = await self._prompt()
        user = self._question or await self._store(role="user", content=self.content)
        self.phase = "generating"
        outcome = await self._generate(handle, messages)
        self.phase = "storing"
        if self._previous is not None and not any(outcome.parts):
            # A regeneration with no text to show for itself: the previous answer stays.
            if outcome.error is not None and self._stop_reason is None:
                raise TurnFailed(outcome.error, None, user.id)
            self._queue.put_nowait(TurnDone(message_out(self._previous), user.id))
            return
        self._replaced = self._previous.id if self._previous is not None else None
        answer = await self._store_answer(user.id, outcome)
        if outcome.error is not None and self._stop_reason is None:
            raise TurnFailed(outcome.error, answer.id, user.id)
        self._queue.put_nowait(TurnDone(message_out(answer), user.id, self._replaced))

    async def _prompt(self) -> tuple[ModelHandle, list[BaseMessage]]:
        """The messages the model sees: system prompt, as much history as fits, the new message (413
        when even the new message does not fit)."""
        async with self.service.transaction() as conn:
            session = await repo.get_session(conn, identity=self.identity, session_id=self.session_id)
            if session is None:
                raise not_found(self.session_id)
            rows = await repo.list_messages(conn, session_id=self.session_id)
            if rows and rows[-1].role == "user":
                rows.append(await _close_interrupted(conn, self.session_id, rows[-1]))
        if self.regenerate:
            rows = self._last_question(rows)
        handle = self.service.registry.chat(session.model)
        self.session_model = session.model
        self.sampling = Sampling(temperature=session.temperature, max_tokens=session.max_tokens)
        budget = budget_for(handle, params_for(handle, self.sampling).get("max_tokens"))
        messages, _ = await fit_history(
            system=self.service.system_message(session),
            history=to_messages(conversation(rows)),
            new=HumanMessage(self.content),
            budget=budget,
            count=counter_for(handle),
        )
        return handle, messages

    def _last_question(self, rows: list[repo.MessageRow]) -> list[repo.MessageRow]:
        """Regenerating: take the last question and its answer out of the history (400 when there is none)."""
        if len(rows) < 2 or rows[-1].role != "assistant" or rows[-2].role != "user":
            raise InvalidRequest(
                "This conversation has no answer to regenerate; send a message first.", code="nothing_to_regenerate"
            )
        self._question, self._previous = rows[-2], rows[-1]
        self.content = rows[-2].content
        return rows[:-2]

    async def _generate(self, handle: ModelHandle, messages: list[BaseMessage]) -> _Outcome:
        """Generate in a task of its own (`cancel()` stops it), passing deltas on; never raises, so
        what was generated is always stored."""
        outcome = _Outcome(answered_by=handle.name)
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def pump() -> Finished | None:
            events = self.service.generator.generate(self.session_model, messages, self.sampling)
            async with contextlib.aclosing(events):
                async for event in events:
                    outcome.answered_by = event.model
                    if isinstance(event, Finished):
                        return event
                    outcome.parts.append(event.text)
                    self._queue.put_nowait(event)
            return None

        if self._stop_reason is None:
            self._gen_task = asyncio.create_task(pump())
            await asyncio.wait({self._gen_task})
            if not self._gen_task.cancelled():
                try:
                    outcome.finished = self._gen_task.result()
                except StreamStarted as exc:
                    outcome.error = exc.error
                except APIError as exc:
                    outcome.error = exc
                except Exception as exc:  # never lose the partial answer to an unexpected error
                    log.exception("generation failed")
                    outcome.error = GenerationError(f"generation failed ({type(exc).__name__})")
        outcome.latency_ms = round((loop.time() - started) * 1000)
        return outcome

    async def _store_answer(self, user_id: int, outcome: _Outcome) -> repo.MessageRow:
        """The answer, complete or (failed, cancelled, shut down) incomplete with the reason."""
        finished, error = outcome.finished, outcome.error
        complete = finished is not None and self._stop_reason is None
        reason = None if complete else (self._stop_reason or (error.code if error else None) or "failed")
        return await self._store(
            role="assistant",
            content="".join(outcome.parts),
            status="complete" if complete else "incomplete",
            reply_to=user_id,
            model=outcome.answered_by,
            prompt_tokens=finished.usage.prompt_tokens if finished else None,
            completion_tokens=finished.usage.completion_tokens if finished else None,
            latency_ms=outcome.latency_ms,
            finish_reason=finished.finish_reason if finished else ("cancelled" if self._stop_reason else "error"),
            error=reason,
            replaces=self._replaced,
        )

    async def _store(self, *, replaces: int | None = None, **values: object) -> repo.MessageRow:
        """One message (and, regenerating, the removal of the answer it replaces), one transaction. A
        session deleted meanwhile is a 404, not a 500."""
        try:
            async with self.service.transaction() as conn:
                if await repo.get_session(conn, identity=self.identity, session_id=self.session_id) is None:
                    raise not_found(self.session_id)
                row = await repo.add_message(conn, session_id=self.session_id, **values)  # type: ignore[arg-type]
                if replaces is not None:
                    await repo.delete_message(conn, session_id=self.session_id, message_id=replaces)
                return row
        except IntegrityError:
            raise not_found(self.session_id) from None
