"""create_app(): the FastAPI application, its lifespan and its middleware.

Heavy objects (models, database engine, HTTP clients) are built in the lifespan, never at import,
and closed at shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import docs, errors
from app.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from app.api.responses import JSONResponse
from app.api.routes import chat, health, models
from app.core.config import Settings, get_settings
from app.core.logging import register_secrets
from app.core.models_file import ModelsFile, load_models_file
from app.providers.registry import ModelRegistry

log = logging.getLogger("slipway")

#: Extra routers and lifespan hooks joined by feature modules (sessions, auth, metrics, web...).
#: Each entry of EXTENSIONS is a callable(app) that may add routers, middleware and state.
EXTENSIONS: list = []


def _say_ready(settings: Settings, registry: ModelRegistry) -> None:
    """One plain line for a human at a terminal (stdout), besides the JSON logs (stderr), once the
    in-process models have loaded."""
    if any(h.state != "ready" for h in registry.handles.values() if h.provider.in_process):
        return
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{host}:{settings.port}"
    print(f"Slipway ready: web page {base}/  API {base}/v1  docs {base}/docs", flush=True)


def create_app(settings: Settings | None = None, models_file: ModelsFile | None = None) -> FastAPI:
    settings = settings or get_settings()
    models_file = models_file or load_models_file(settings.config)
    registry = ModelRegistry(models_file, settings)
    register_secrets(s.get_secret_value() for s in settings.api_keys)
    if settings.ngrok_authtoken:
        register_secrets([settings.ngrok_authtoken.get_secret_value()])
    for spec in models_file.models:
        if spec.api_key_env:
            register_secrets([settings.env_secret(spec.api_key_env)])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry.build_all()
        startup = list(getattr(app.state, "startup_hooks", []))
        for hook in startup:
            await hook(app)
        load = asyncio.create_task(registry.load_local())
        app.state.model_load_task = load
        load.add_done_callback(lambda t: t.cancelled() or t.exception() is not None or _say_ready(settings, registry))
        # Everything built so far (imports, LangChain, models, the app) lives as long as the process:
        # freezing it keeps the garbage collector's full passes from re-scanning it during requests,
        # which showed as ~100 ms pauses in p99 latency under load (bench: c=16 p99).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            app.state.shutting_down = True
            for hook in reversed(getattr(app.state, "shutdown_hooks", [])):
                try:
                    await hook(app)
                except Exception:
                    log.exception("shutdown hook failed")
            if not load.done():
                load.cancel()
            await registry.aclose()
            await asyncio.to_thread(registry.close)

    app = FastAPI(
        title="Slipway",
        version="0.1.0",
        summary="An OpenAI-compatible chat service on LangChain chat models.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        root_path=settings.root_path,
        docs_url=None,  # served from local files by app.api.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.models_file = models_file
    app.state.readiness_probes = {}
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    app.state.shutting_down = False
    errors.install(app)
    docs.install(app)
    app.include_router(health.router)
    app.include_router(models.router)
    app.include_router(chat.router)
    for extend in _extensions():
        extend(app)
    # Outermost last: request id wraps everything, then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


def _extensions() -> list:
    """Feature modules that exist join the app; each is one `install(app)` function."""
    from app.features import INSTALLERS

    return [*EXTENSIONS, *INSTALLERS]
