"""Probes. /healthz: the process answers. /readyz: local models loaded and dependencies reachable;
remote providers are reported but never fail readiness (one dead upstream must not take a replica
out of rotation)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter

from app.api.deps import LifecycleDep, ProbesDep, RegistryDep
from app.api.responses import JSONResponse
from app.api.routing import SlipwayRoute

router = APIRouter(tags=["health"], route_class=SlipwayRoute)

#: An absolute file path in a message (after a space, a quote or a colon-space): /readyz is public.
_PATH = re.compile(r"(?<![\w:/])/(?:[^\s'\"/]+/)+([^\s'\"/]+)")


def public(value: Any) -> Any:
    """What a probe may show anyone: file paths cut to their last part (`…/model.gguf`)."""
    if isinstance(value, str):
        return _PATH.sub(lambda m: f"…/{m.group(1)}", value)
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    return value


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(registry: RegistryDep, probes: ProbesDep, lifecycle: LifecycleDep) -> JSONResponse:
    checks: dict[str, object] = {}
    ready = True
    models = {}
    for handle in registry.handles.values():
        models[handle.name] = handle.status()
        if handle.provider.in_process and handle.state != "ready":
            ready = False
    checks["models"] = models
    for name, probe in probes.items():
        ok, detail = await probe()
        checks[name] = {"ok": ok, **({"detail": detail} if detail else {})}
        ready = ready and ok
    if lifecycle.draining:
        ready = False
        checks["shutdown"] = "draining"
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": public(checks)}, status_code=200 if ready else 503
    )
