"""create_app(): the one place the application is assembled: its services, middleware and routes.

Heavy objects (models, database engine, HTTP clients) are built cheaply here and started in the
lifespan (`Services.start`), never at import, and stopped at shutdown (`Services.stop`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from app.api import docs
from app.api.errors import EXCEPTION_HANDLERS
from app.api.openapi import secure_openapi
from app.api.responses import JSONResponse
from app.api.routes import (
    chains,
    chat,
    embeddings,
    eval_runs,
    health,
    metrics,
    models,
    ollama,
    responses,
    sessions,
    ws,
)
from app.container import VERSION, Services
from app.core.config import Settings, get_settings
from app.core.models_file import ModelsFile, load_models_file
from app.middleware.auth import AuthMiddleware
from app.middleware.body_limit import BodyLimitMiddleware
from app.middleware.headers import CORS_OPTIONS, SecurityHeadersMiddleware
from app.middleware.observability import ObservabilityMiddleware
from app.middleware.rate_limit import RateLimitMiddleware
from app.middleware.request_id import RequestIdMiddleware
from app.providers.registry import PROVIDERS
from app.tunnel import Tunnel
from app.web import router as web_page
from app.web import static as web_static

#: Every router, in the order FastAPI matches them.
ROUTERS = [
    health.router,  # /healthz, /readyz: public
    models.router,  # /v1/models
    chat.router,  # /v1/chat/completions, /v1/completions
    responses.router,  # /v1/responses
    embeddings.router,  # /v1/embeddings
    chains.router,  # /v1/chains
    sessions.router,  # /api/sessions: conversations kept by the server
    ws.router,  # /api/sessions/{id}/ws
    eval_runs.router,  # /api/eval: evaluation runs for the web page (read-only)
    ollama.router,  # Ollama's API: every other /api/... path
    metrics.router,  # /metrics
    docs.router,  # /docs, /redoc from local files: public
    web_page,  # the chat page at `/`: public
]


def middleware(services: Services, app: FastAPI) -> list[Middleware]:
    """Outermost first. Observability sits outside auth so refused requests are counted and logged
    too; CORS outside auth so a browser's preflight and a 401 both carry CORS headers; rate limits
    inside auth, which names the key."""
    s = services.settings
    cors = [Middleware(CORSMiddleware, allow_origins=s.cors_origins, **CORS_OPTIONS)] if s.cors_origins else []
    return [
        Middleware(RequestIdMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=s.max_body_bytes),
        Middleware(
            ObservabilityMiddleware, metrics=services.metrics, routes=app.router.routes, tracing=services.tracing
        ),
        Middleware(SecurityHeadersMiddleware),
        *cors,
        Middleware(
            AuthMiddleware,
            keyring=services.keyring,
            protect_metrics=s.auth_metrics,
            host_guard=s.is_loopback_bind,
            allowed_hosts=s.allowed_hosts,
        ),
        Middleware(
            RateLimitMiddleware,
            limiter=services.limiter,
            default_rpm=s.default_rpm,
            default_tpm=s.default_tpm,
            on_reject=lambda limit: services.metrics.rate_limited.labels(limit).inc(),
        ),
    ]


def create_app(
    settings: Settings | None = None, models_file: ModelsFile | None = None, tunnel: Tunnel | None = None
) -> FastAPI:
    settings = settings or get_settings()
    models_file = models_file or load_models_file(settings.config, PROVIDERS)
    services = Services.build(settings, models_file, tunnel)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title="Slipway",
        version=VERSION,
        summary="An OpenAI-compatible chat service on LangChain chat models.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        root_path=settings.root_path,
        docs_url=None,  # served from local files by app.api.docs
        redoc_url=None,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]  # handlers typed by their exception
    )
    app.state.services = services  # what `app.api.deps` hands to routes
    for router in ROUTERS:
        app.include_router(router)
    app.mount(docs.ASSETS_URL, docs.assets, name="docs-assets")
    app.mount("/static", web_static, name="static")
    # Set, not added one by one: the list reads outermost first, as `middleware()` writes it.
    app.user_middleware = middleware(services, app)
    secure_openapi(app, protect_metrics=settings.auth_metrics)
    # The access log (ObservabilityMiddleware) replaces uvicorn's unstructured one, which would also
    # log query strings.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    return app
