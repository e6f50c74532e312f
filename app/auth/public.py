"""What needs no key: probes, the web page and its files, the API docs, and `/metrics` when
`SLIPWAY_AUTH_METRICS=false`. Everything else does (default-deny: a route added later is protected
without anyone remembering to protect it). The auth middleware enforces it; the OpenAPI schema says it."""

from __future__ import annotations

PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/favicon.ico"}
)
PUBLIC_PREFIXES = ("/static/", "/docs/assets/")


def is_public(path: str, metrics_open: bool) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or (metrics_open and path == "/metrics")
