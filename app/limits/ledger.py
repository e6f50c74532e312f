"""Which key the tokens of a generation belong to, without passing it through every call.

The rate-limit middleware opens a `Ledger` for each request (or WebSocket) in a context variable;
`generate()`'s `on_finish` hook adds the tokens each generation used, wherever it ran (chat,
chains, conversations: tasks inherit the context); the middleware charges them to the key.

Reservations: before a generation takes a model slot it reserves its worst case (the prompt estimate
plus its max_tokens, at most the key's whole budget) from the key's token bucket, and is refused (429)
when the bucket cannot cover it; when it ends the reservation is released and what it really used is
charged. So a burst of parallel requests cannot spend more than the budget (they used to be admitted
while the bucket was merely positive, and charged after). A WebSocket turn reserves when it starts
and settles when it ends, like a request.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Ledger:
    tokens: int = 0
    #: set by the middleware when the key has a token budget
    key_id: str | None = None
    tpm: int | None = None
    limiter: Any = None
    #: reservations of generations that have ended (released), not yet settled with the limiter
    released: int = 0

    def take(self) -> int:
        """Tokens to charge now: what ended generations used, minus what they had reserved (may be < 0)."""
        net, self.tokens, self.released = self.tokens - self.released, 0, 0
        return net


LEDGER: ContextVar[Ledger | None] = ContextVar("slipway_ledger", default=None)


def record_tokens(tokens: int) -> None:
    ledger = LEDGER.get()
    if ledger is not None:
        ledger.tokens += tokens


async def reserve_tokens(worst_case: int) -> int:
    """Reserve a generation's worst case from the key's token budget; 429 if it cannot be covered.
    Returns what was reserved (0 without a budget), to hand to `release_tokens` when it ends."""
    ledger = LEDGER.get()
    if ledger is None or not ledger.tpm or ledger.limiter is None or ledger.key_id is None:
        return 0
    cost = max(1, min(worst_case, ledger.tpm))
    decision = await ledger.limiter.reserve(ledger.key_id, ledger.tpm, cost)
    if not decision.allowed:
        raise decision.error()
    return cost


def release_tokens(reserved: int) -> None:
    ledger = LEDGER.get()
    if ledger is not None and reserved:
        ledger.released += reserved
