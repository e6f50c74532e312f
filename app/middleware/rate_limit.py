"""Per-key rate limits as pure ASGI middleware (inside auth, which names the key).

What counts as a request: every POST under /v1 and /api (the calls that do work) and every frame a
WebSocket client sends. Tokens: what each generation reports, charged after it ends. Keys with no
limits (and no SLIPWAY_DEFAULT_RPM/TPM) skip the limiter entirely: no lookup, no headers.
Over the limit: 429 with Retry-After and OpenAI's x-ratelimit-* headers (HTTP), or an error frame
in place of the refused message (WebSocket, which stays open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.keys import ANONYMOUS, Identity
from app.limits.buckets import Decision
from app.limits.ledger import LEDGER, Ledger
from app.middleware.asgi import route_path, send_error, socket_error

COUNTED_PREFIXES = ("/v1/", "/api/")


class Limiter(Protocol):
    async def admit(self, key_id: str, rpm: int | None, tpm: int | None) -> Decision: ...
    async def charge(self, key_id: str, tpm: int | None, tokens: int) -> None: ...
    async def reserve(self, key_id: str, tpm: int, tokens: int) -> Decision: ...


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: Limiter,
        default_rpm: int | None,
        default_tpm: int | None,
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.anonymous = Identity(
            name=ANONYMOUS.name, key_id=ANONYMOUS.key_id, rpm=default_rpm, tpm=default_tpm, source="anonymous"
        )
        self.on_reject = on_reject
        self._charges: set[asyncio.Task[None]] = set()

    def _identity(self, scope: Scope) -> Identity:
        state = scope.get("state")
        identity = state.get("api_key") if state else None
        return identity if identity is not None else self.anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["method"] != "POST" or not route_path(scope).startswith(COUNTED_PREFIXES):
                await self.app(scope, receive, send)
                return
            identity = self._identity(scope)
            if identity.rpm is None and identity.tpm is None:
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, identity)
        elif kind == "websocket":
            identity = self._identity(scope)
            if identity.rpm is None and identity.tpm is None:
                await self.app(scope, receive, send)
                return
            await self._websocket(scope, receive, send, identity)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send, identity: Identity) -> None:
        decision = await self.limiter.admit(identity.key_id, identity.rpm, identity.tpm)
        if not decision.allowed:
            if self.on_reject:
                self.on_reject(decision.limited_by or "requests")
            await send_error(send, decision.error(), decision.headers(), scope=scope)
            return
        extra = decision.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        ledger = self._ledger(identity)
        token = LEDGER.set(ledger)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            LEDGER.reset(token)
            self._charge(identity, ledger.take())

    def _ledger(self, identity: Identity) -> Ledger:
        return Ledger(key_id=identity.key_id, tpm=identity.tpm, limiter=self.limiter)

    def _charge(self, identity: Identity, tokens: int) -> None:
        """Charge (or refund) in a task of its own: a client that left must not cancel the bookkeeping."""
        if tokens and identity.tpm:
            task = asyncio.ensure_future(self.limiter.charge(identity.key_id, identity.tpm, tokens))
            self._charges.add(task)
            task.add_done_callback(self._charges.discard)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, identity: Identity) -> None:
        ledger = self._ledger(identity)
        token = LEDGER.set(ledger)

        async def limited_receive() -> Message:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return message
                self._charge(identity, ledger.take())
                decision = await self.limiter.admit(identity.key_id, identity.rpm, identity.tpm)
                if decision.allowed:
                    return message
                if self.on_reject:
                    self.on_reject(decision.limited_by or "requests")
                await send({"type": "websocket.send", "text": socket_error(decision.error())})

        try:
            await self.app(scope, limited_receive, send)
        finally:
            LEDGER.reset(token)
            self._charge(identity, ledger.take())
