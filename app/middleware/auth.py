"""Bearer-key auth in front of the API, as pure ASGI middleware (no per-request framework objects).

What needs a key (when any key exists): everything except the public paths: probes, the web page and
its static files, the API docs, and `/metrics` when `SLIPWAY_AUTH_METRICS=false`. Default-deny: a
route added later is protected without anyone remembering to protect it.

WebSockets authenticate by the `Authorization` header or, since browsers cannot set headers on a
WebSocket, by a first frame `{"type": "auth", "key": "..."}`. The middleware handles that frame
itself (accepting the connection, reading the frame, then handing the app a fresh `websocket.connect`
and swallowing its `websocket.accept`), so a WebSocket route needs no auth code of its own and sees
`websocket.state.identity` from its first line.

Request state set on success: `identity` (the key's id, `db:<n>` or `static:<hash>`: what owns data),
`key_name` (the key's name, for logs and metrics; never the key) and `api_key` (`Identity`).
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.keyring import KeyRing
from app.auth.keys import Identity
from app.auth.public import is_public
from app.core.caller import CALLER
from app.core.config import is_loopback
from app.core.errors import Forbidden, Unauthorized
from app.middleware.asgi import bearer_token, deny_websocket, route_path, send_error, socket_error

AUTH_FRAME_TIMEOUT_S = 10.0
#: Close code for a WebSocket refused for its key (4000-4999 are the application's; 4401 mirrors HTTP 401).
WS_UNAUTHORIZED = 4401
AUTH_OK = orjson.dumps({"type": "auth", "ok": True}).decode()
_CHALLENGE = [(b"www-authenticate", b'Bearer realm="slipway"')]


def missing_key() -> Unauthorized:
    return Unauthorized(
        "You didn't provide an API key. Send it in the Authorization header: `Authorization: Bearer <key>`.",
        code="missing_api_key",
    )


def no_keys_yet() -> Unauthorized:
    """A public bind with no key anywhere: every request is refused until an operator creates one."""
    return Unauthorized(
        "This service listens on a public address and no API key exists yet, so it refuses every request. "
        "The operator creates one with `python -m app keys create --name NAME` (or sets SLIPWAY_API_KEYS).",
        code="no_api_keys",
    )


def host_not_allowed(host: str) -> Forbidden:
    shown = host[:100].encode("ascii", "backslashreplace").decode()
    return Forbidden(
        f"Host {shown!r} is not allowed: without API keys this service answers only requests addressed to "
        "this machine (localhost, 127.0.0.1, [::1]). Add the name to SLIPWAY_ALLOWED_HOSTS, or create an API "
        "key (`python -m app keys create --name NAME`).",
        code="host_not_allowed",
    )


def host_name(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):  # [::1]:8000
                return host[1 : host.find("]")] if "]" in host else host
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


def wrong_key() -> Unauthorized:
    return Unauthorized("Incorrect API key provided, or the key was revoked.", code="invalid_api_key")


def _set_identity(scope: Scope, identity: Identity) -> None:
    state = scope.setdefault("state", {})
    state["identity"] = identity.key_id  # owns data: a name can be reused by another key, an id cannot
    state["key_name"] = identity.name
    state["api_key"] = identity
    CALLER.set(identity.key_id)  # the model queue's fair share (app.providers.slots)


class AuthMiddleware:
    """`host_guard`: on a loopback bind, while no key exists, only requests addressed to a loopback name
    (or one of `allowed_hosts`) are served: the service trusts them because they come from this machine,
    and a page on another site can reach 127.0.0.1 under its own name by DNS rebinding."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keyring: KeyRing,
        protect_metrics: bool = True,
        host_guard: bool = False,
        allowed_hosts: list[str] | None = None,
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.metrics_open = not protect_metrics
        self.host_guard = host_guard
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts or ())

    def _foreign_host(self, scope: Scope) -> str | None:
        host = host_name(scope)
        if host in self.allowed_hosts or host.endswith(".localhost") or is_loopback(host):
            return None
        return host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind in ("http", "websocket") and self.host_guard and not self.keyring.enabled:
            foreign = self._foreign_host(scope)
            if foreign is not None:
                if kind == "http":
                    await send_error(send, host_not_allowed(foreign), scope=scope)
                else:
                    await deny_websocket(scope, send, host_not_allowed(foreign), 4403)
                return
        if kind == "http":
            if not self.keyring.enabled or is_public(route_path(scope), self.metrics_open):
                await self.app(scope, receive, send)
                return
            token = bearer_token(scope)
            identity = await self.keyring.resolve(token) if token else None
            if identity is None:
                if self.keyring.required and not self.keyring.has_keys:
                    refusal = no_keys_yet()
                else:
                    refusal = wrong_key() if token else missing_key()
                await send_error(send, refusal, _CHALLENGE, scope=scope)
                return
            _set_identity(scope, identity)
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.keyring.enabled:
            await self.app(scope, _skip_auth_frame(receive, send), send)
            return
        token = bearer_token(scope)
        if token is not None:
            identity = await self.keyring.resolve(token) if token else None
            if identity is None:
                await deny_websocket(scope, send, wrong_key(), WS_UNAUTHORIZED)
                return
            _set_identity(scope, identity)
            await self.app(scope, receive, send)
            return
        await self._websocket_first_frame(scope, receive, send)

    async def _websocket_first_frame(self, scope: Scope, receive: Receive, send: Send) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        try:
            async with asyncio.timeout(AUTH_FRAME_TIMEOUT_S):
                first = await receive()
        except TimeoutError:
            await _refuse_frame(send, missing_key())
            return
        if first["type"] != "websocket.receive":
            return  # the client left
        key = _auth_frame_key(first)
        identity = await self.keyring.resolve(key) if key else None
        if identity is None:
            await _refuse_frame(send, wrong_key() if key else missing_key())
            return
        _set_identity(scope, identity)
        await send({"type": "websocket.send", "text": AUTH_OK})
        replayed = False

        async def app_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "websocket.connect"}
            return await receive()

        async def app_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                return  # already accepted to read the auth frame
            if message["type"].startswith("websocket.http.response"):
                if message["type"] == "websocket.http.response.start":
                    await send({"type": "websocket.close", "code": 1008})
                return
            await send(message)

        await self.app(scope, app_receive, app_send)


async def _refuse_frame(send: Send, error: Unauthorized) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "websocket.send", "text": socket_error(error)})
        await send({"type": "websocket.close", "code": WS_UNAUTHORIZED, "reason": error.code or ""})


def _auth_frame_key(message: Message) -> str | None:
    """The key of a `{"type": "auth", "key": ...}` frame, or None for any other frame."""
    raw = message.get("text") or message.get("bytes")
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(data, dict) and data.get("type") == "auth" and isinstance(data.get("key"), str):
        return data["key"]
    return None


def _skip_auth_frame(receive: Receive, send: Send) -> Receive:
    """With auth off, a browser that sends an auth frame anyway must not confuse the app: answer it here."""
    first_data = True

    async def wrapped() -> Message:
        nonlocal first_data
        message = await receive()
        if first_data and message["type"] == "websocket.receive":
            first_data = False
            raw = message.get("text") or message.get("bytes") or ""
            if ('"auth"' in raw if isinstance(raw, str) else b'"auth"' in raw) and _auth_frame_key(message) is not None:
                await send({"type": "websocket.send", "text": AUTH_OK})
                return await receive()
        return message

    return wrapped
