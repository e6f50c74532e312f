"""GET /metrics: Prometheus text format (behind the API key unless SLIPWAY_AUTH_METRICS=false)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.routing import SlipwayRoute

router = APIRouter(tags=["observability"], route_class=SlipwayRoute)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Requests, latency, time to first token, tokens, queues, streams, provider errors, rate limits."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
