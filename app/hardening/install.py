"""`install(app)`: join keys, limits, metrics, logs, traces, shutdown and headers to the app.

Middleware, outermost first (after the core's RequestId and BodyLimit):
  Observability -> SecurityHeaders -> CORS (if configured) -> Auth -> RateLimit -> routes
Observability sits outside auth so refused requests are counted and logged too; CORS outside auth so
a browser's preflight and a 401 both carry CORS headers; rate limits inside auth, which names the key.
Everything costly is built here, once; the middleware only reads what this prepared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from app.auth.keyring import KeyRing
from app.auth.middleware import AuthMiddleware
from app.core.plugins import optional_import
from app.hardening.headers import SecurityHeadersMiddleware, add_cors
from app.hardening.openapi import secure_openapi
from app.hardening.shutdown import Drain
from app.limits.buckets import LocalLimiter
from app.limits.middleware import RateLimitMiddleware
from app.limits.shared import SharedLimiter
from app.observability.hooks import generation_hooks
from app.observability.metrics import Metrics
from app.observability.middleware import ObservabilityMiddleware
from app.observability.routes import router as metrics_router
from app.observability.tracing import build_tracing

log = logging.getLogger(__name__)


def install(app: FastAPI) -> None:
    settings = app.state.settings
    registry = app.state.registry

    metrics = Metrics(registry)
    app.state.metrics = metrics
    registry.generation_hooks = {**getattr(registry, "generation_hooks", {}), **generation_hooks(metrics)}
    tracing = build_tracing(settings.otlp_endpoint, version=app.version)

    keyring = KeyRing.from_settings(settings)
    store = optional_import("app.auth.store")
    if store is not None:
        keyring.attach(store.snapshot_loader(app))
    app.state.keyring = keyring

    limiter: LocalLimiter | SharedLimiter = SharedLimiter(settings.redis_url) if settings.redis_url else LocalLimiter()
    app.state.limiter = limiter

    async def rate_limit_backend() -> tuple[bool, str | None]:
        return limiter.describe()

    app.state.readiness_probes["rate_limits"] = rate_limit_backend

    app.include_router(metrics_router)
    secure_openapi(app, protect_metrics=settings.auth_metrics)

    def count_rejection(limit: str) -> None:
        metrics.rate_limited.labels(limit).inc()

    app.add_middleware(
        RateLimitMiddleware,
        limiter=limiter,
        default_rpm=settings.default_rpm,
        default_tpm=settings.default_tpm,
        on_reject=count_rejection,
    )
    app.add_middleware(
        AuthMiddleware,
        keyring=keyring,
        protect_metrics=settings.auth_metrics,
        host_guard=settings.is_loopback_bind,
        allowed_hosts=settings.allowed_hosts,
    )
    add_cors(app, settings.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, routes=app.router.routes, tracing=tracing)
    # The access log above replaces uvicorn's unstructured one (which would also log query strings).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)

    drain = Drain(app, settings.shutdown_grace_s)
    app.state.drain = drain
    tasks: list[asyncio.Task[None]] = []

    async def start(app: FastAPI) -> None:
        drain.install_signal_handlers()
        if keyring.has_database:
            await keyring.refresh()
            tasks.append(asyncio.create_task(keyring.run_refresher()))

    async def stop(app: FastAPI) -> None:
        drain.restore()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await limiter.close()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
