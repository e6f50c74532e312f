"""OpenTelemetry traces over OTLP/HTTP, only when `SLIPWAY_OTLP_ENDPOINT` is set (otherwise nothing is
imported and requests pay nothing). One server span per request, joined to the caller's trace by its
`traceparent` header, with the model and tokens as attributes and the first token as an event.

The endpoint is the collector's base URL (`http://collector:4318`), as `OTEL_EXPORTER_OTLP_ENDPOINT`
is; `/v1/traces` is appended unless already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Tracing:
    tracer: Any
    provider: Any

    def shutdown(self) -> None:
        self.provider.shutdown()


def traces_url(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def build_tracing(endpoint: str | None, service_name: str = "slipway", version: str = "") -> Tracing | None:
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "service.version": version}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=5)))
    return Tracing(tracer=provider.get_tracer("slipway"), provider=provider)
