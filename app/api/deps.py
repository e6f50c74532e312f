"""Request dependencies: what a route needs, typed, taken from `app.state` (built in the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.providers.registry import ModelRegistry

# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
# two thread hops per request for what is an attribute lookup (seen in bench/profile.py's profile).


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


#: The one identity of every caller while no API key exists (and of keyless calls when auth is off).
ANONYMOUS_IDENTITY = "anonymous"


async def get_identity(conn: HTTPConnection) -> str:
    """Who is calling, for ownership of their data (conversations): the one place that decides.

    The auth layer sets `state.identity` to the API key's id (`db:<n>`, `static:<hash>`; never the key)
    on HTTP requests and WebSockets alike; without a key everyone is the one anonymous identity. Ids,
    not names: a revoked key's name may be given to a new key, which must not inherit its data
    (`keys rotate` hands a key's conversations to its successor on purpose).
    """
    identity = getattr(conn.state, "identity", None)
    return identity if isinstance(identity, str) and identity else ANONYMOUS_IDENTITY


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
IdentityDep = Annotated[str, Depends(get_identity)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
