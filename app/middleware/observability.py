"""One pure ASGI layer that measures every request: Prometheus counters and histograms, one
structured access-log line, and (when configured) an OpenTelemetry span.

Logged per request: request id (bound by RequestIdMiddleware), method, path (never the query string,
which may carry a key), route, status, model, key name (never the key), latency, time to first token,
tokens, overhead. Probes and /metrics log at DEBUG so they do not drown the log.

Overhead is Slipway's own time: wall time minus the time spent waiting for the model (its queue slot
and its stream). Every response carries it so far as `X-Slipway-Overhead-Ms` (for a stream: up to
its first event, when the headers go out); a request that used a model observes the whole request's
in `slipway_overhead_seconds{route, model}`, as LiteLLM and TensorZero expose theirs.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.middleware.asgi import route_path
from app.observability.access_log import AccessLog, scrubbed
from app.observability.context import RECORD, RequestRecord
from app.observability.metrics import Metrics
from app.observability.tracing import Tracing

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _templates(routes: list[BaseRoute]) -> list[tuple[re.Pattern[str], str]]:
    """Every route's regex and template, flattened (FastAPI >= 0.16x keeps included routers as groups)."""
    out: list[tuple[re.Pattern[str], str]] = []
    for route in routes:
        regex, template = getattr(route, "path_regex", None), getattr(route, "path_format", None)
        if regex is not None and template:
            out.append((regex, template))
            continue
        contexts = getattr(route, "effective_route_contexts", None)
        for context in (contexts() if callable(contexts) else contexts) or ():
            regex, template = getattr(context, "path_regex", None), getattr(context, "path_format", None)
            if regex is not None and template:
                out.append((regex, template))
    return out


class RouteNames:
    """The route template of a request, bounded whatever the path: `unmatched` when no route fits.

    Routed requests carry their route in the scope; for one refused before routing (401, 429) the
    template is found by matching the path against the app's routes, flattened once on first use.
    """

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.routes = routes  # the app's own list: routers included after install() join it
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if template:
            return template
        if self._templates is None:
            self._templates = _templates(self.routes)
        path = route_path(scope)
        for regex, template in self._templates:
            if regex.match(path):
                return template
        return "unmatched"


def _identity(scope: Scope) -> str:
    """The key's name, for logs and metrics (what owns data is its id: `state["identity"]`)."""
    state = scope.get("state")
    return (state.get("key_name") if state else None) or "anonymous"


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        routes: list[BaseRoute],
        tracing: Tracing | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.route_name = RouteNames(routes)
        self.access = access_log or AccessLog()
        self.tracing = tracing
        #: (route, method, status, model) -> metric children; bounded, since every label is.
        self._cache: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}

    def _children(self, route: str, method: str, status: int, model: str) -> tuple[Any, Any]:
        key = (route, method, status, model)
        children = self._cache.get(key)
        if children is None:
            children = self._cache[key] = (
                self.metrics.requests.labels(route, method, str(status), model),
                self.metrics.latency.labels(route, method),
            )
        return children

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        record = RequestRecord()
        token = RECORD.set(record)
        status = 500
        streaming = False
        metrics = self.metrics

        async def measuring_send(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                own_ms = (time.perf_counter() - started - record.waiting_s()) * 1000
                headers = message.setdefault("headers", [])
                if not isinstance(headers, list):
                    headers = message["headers"] = list(headers)
                headers.append((b"x-slipway-overhead-ms", f"{max(own_ms, 0.0):.3f}".encode()))
                for key, value in headers:
                    if key == b"x-slipway-model":
                        record.model = value.decode("latin-1")
                    elif key == b"content-type" and value.startswith(b"text/event-stream"):
                        streaming = True
                        metrics.active_streams.inc()
            await send(message)

        span = self._start_span(scope) if self.tracing else None
        try:
            if span is not None:
                from opentelemetry import trace

                with trace.use_span(span, end_on_exit=False):
                    await self.app(scope, receive, measuring_send)
            else:
                await self.app(scope, receive, measuring_send)
        finally:
            RECORD.reset(token)
            if streaming:
                metrics.active_streams.dec()
            elapsed = time.perf_counter() - started
            route = self.route_name(scope)
            method = scope["method"]
            counter, histogram = self._children(route, method, status, record.model)
            counter.inc()
            histogram.observe(elapsed)
            if record.model:
                metrics.overhead.labels(route, record.model).observe(max(elapsed - record.waiting_s(), 0.0))
            self._log(scope, route, status, elapsed, record)
            if span is not None:
                self._end_span(span, scope, route, status, record)

    def _log(self, scope: Scope, route: str, status: int, elapsed: float, record: RequestRecord) -> None:
        path = route_path(scope)
        level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
        if not self.access.enabled(level):
            return
        state = scope.get("state") or {}
        fields: dict[str, Any] = {
            "request_id": state.get("request_id"),
            "method": scope["method"],
            "path": scrubbed(path),
            "route": route,
            "status": status,
            "key_name": state.get("key_name") or "anonymous",
            "latency_ms": round(elapsed * 1000, 2),
        }
        if record.model:
            fields["model"] = record.model
            fields["overhead_ms"] = round(max(elapsed - record.waiting_s(), 0.0) * 1000, 3)
        if record.ttft_s is not None:
            fields["ttft_ms"] = round(record.ttft_s * 1000, 2)
        if record.queue_wait_s is not None:
            fields["queue_wait_ms"] = round(record.queue_wait_s * 1000, 2)
        if record.prompt_tokens or record.completion_tokens:
            fields["prompt_tokens"] = record.prompt_tokens
            fields["completion_tokens"] = record.completion_tokens
        client = scope.get("client")
        if client:
            fields["client"] = client[0]
        self.access.write(level, "request", fields)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        record = RequestRecord()
        token = RECORD.set(record)
        accepted = False
        close_code: int | None = None

        async def measuring_send(message: Message) -> None:
            nonlocal accepted, close_code
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                self.metrics.active_websockets.inc()
            elif message["type"] == "websocket.close":
                close_code = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive, measuring_send)
        finally:
            RECORD.reset(token)
            if accepted:
                self.metrics.active_websockets.dec()
            if self.access.enabled(logging.INFO):
                state = scope.get("state") or {}
                fields = {
                    "request_id": state.get("request_id"),
                    "path": scrubbed(route_path(scope)),
                    "route": self.route_name(scope),
                    "accepted": accepted,
                    "close_code": close_code,
                    "key_name": _identity(scope),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "prompt_tokens": record.prompt_tokens,
                    "completion_tokens": record.completion_tokens,
                }
                self.access.write(logging.INFO, "websocket", fields)

    def _start_span(self, scope: Scope) -> Any:
        from opentelemetry import propagate, trace

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        assert self.tracing is not None
        return self.tracing.tracer.start_span(
            f"{scope['method']} {route_path(scope)}",
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": route_path(scope)},
        )

    def _end_span(self, span: Any, scope: Scope, route: str, status: int, record: RequestRecord) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("slipway.key_name", _identity(scope))
        if record.model:
            span.set_attribute("gen_ai.request.model", record.model)
            span.set_attribute("gen_ai.usage.input_tokens", record.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", record.completion_tokens)
        if record.ttft_s is not None:
            span.set_attribute("slipway.ttft_s", record.ttft_s)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
