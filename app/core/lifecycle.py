"""Where the process is in its life, as typed flags that graceful shutdown (`app.shutdown`) sets and
the rest reads: readiness says `draining`, `generate()` stops at the next token once told to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lifecycle:
    #: SIGTERM arrived (or the app is stopping): /readyz answers 503 so balancers stop sending work.
    draining: bool = False
    #: The grace period is nearly over: generations end at their next token with `shutting_down`.
    stop_generation: bool = False
