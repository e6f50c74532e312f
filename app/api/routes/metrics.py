"""GET /metrics: Prometheus text format (behind the API key unless SLIPWAY_AUTH_METRICS=false)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import MetricsDep
from app.api.routing import SlipwayRoute

router = APIRouter(tags=["observability"], route_class=SlipwayRoute)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(metrics: MetricsDep) -> Response:
    """Requests, latency, time to first token, tokens, queues, streams, provider errors, rate limits."""
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
