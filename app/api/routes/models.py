"""GET /v1/models and /v1/models/{id} in OpenAI's shapes (plus each model's state, fenced in `slipway`)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RegistryDep
from app.api.routing import SlipwayRoute
from app.protocol.openai import model_object

router = APIRouter(prefix="/v1", tags=["openai"], route_class=SlipwayRoute)


@router.get("/models")
async def list_models(registry: RegistryDep) -> dict:
    data = []
    for handle in registry.handles.values():
        obj = model_object(handle.name, handle.created, handle.provider.owned_by)
        obj["slipway"] = handle.status()
        data.append(obj)
    return {"object": "list", "data": data}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, registry: RegistryDep) -> dict:
    handle = registry.get(model_id)
    obj = model_object(handle.name, handle.created, handle.provider.owned_by)
    obj["slipway"] = handle.status()
    return obj
