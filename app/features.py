"""The feature modules that join the app, in order. Each is `install(app: FastAPI) -> None`.

Adding a feature (sessions, chains over HTTP, auth, metrics, the web page) is one line here; the core
in `app.main` stays unaware of them.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from app.api.routes import chains, sessions
from app.hardening.install import install as hardening
from app.web import install as web_page

INSTALLERS: list[Callable[[FastAPI], None]] = [
    chains.install,
    sessions.install,  # conversations: database + migrations at start-up (before auth reads its keys), /api, WebSocket
    web_page,  # the chat page at `/` (static files; public, like /healthz)
    hardening,  # keys, rate limits, metrics, access log, traces, graceful shutdown, headers
]
