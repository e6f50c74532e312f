"""Who the current request is from, for code below the API that must tell callers apart without
being handed the request: the model queue shares its slots fairly between keys.

Set by the auth middleware for every request and WebSocket (the key's id; `anonymous` without
auth); tasks started while serving it inherit it.
"""

from __future__ import annotations

from contextvars import ContextVar

CALLER: ContextVar[str] = ContextVar("slipway_caller", default="anonymous")
