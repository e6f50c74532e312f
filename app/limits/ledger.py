"""Which key the tokens of a generation belong to, without passing it through every call.

The rate-limit middleware opens a `Ledger` for each request (or WebSocket) in a context variable;
`generate()`'s `on_finish` hook adds the tokens each generation used, wherever it ran (chat,
chains, conversations: tasks inherit the context); the middleware charges them to the key.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class Ledger:
    tokens: int = 0

    def take(self) -> int:
        tokens, self.tokens = self.tokens, 0
        return tokens


LEDGER: ContextVar[Ledger | None] = ContextVar("slipway_ledger", default=None)


def record_tokens(tokens: int) -> None:
    ledger = LEDGER.get()
    if ledger is not None:
        ledger.tokens += tokens
