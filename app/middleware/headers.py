"""Security headers and CORS.

Every response gets `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`; HTML pages
(the web page at `/`) also get a strict Content-Security-Policy (scripts and styles from this origin
only, no framing, no plugins) and `X-Frame-Options: DENY`. The API docs (/docs, /redoc) load
Swagger/ReDoc from a CDN with inline scripts, so they keep only the general headers.

CORS is off unless `SLIPWAY_CORS_ORIGINS` lists origins: the web page is served from the same origin
and needs none; other browser apps must be allowed by name.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.middleware.asgi import route_path

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
GENERAL = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
PAGE = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
#: Headers a browser app may read from responses (rate limits, request id, model).
EXPOSED = [
    "x-request-id",
    "x-slipway-model",
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *GENERAL]
                if _is_html(headers) and route_path(scope) not in DOCS_PATHS:
                    headers += PAGE
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key == b"content-type":
            return value.startswith(b"text/html")
    return False


#: CORSMiddleware's options besides the origins (`app.main` adds it when SLIPWAY_CORS_ORIGINS is set).
CORS_OPTIONS: dict[str, Any] = {
    "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    "allow_headers": ["authorization", "content-type", "x-request-id"],
    "expose_headers": EXPOSED,
    "allow_credentials": False,
    "max_age": 600,
}
