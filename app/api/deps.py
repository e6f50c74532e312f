"""Request dependencies: what a route needs, typed, taken from the app's one `Services` container
(`app.container`, built by `create_app`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.auth.keyring import KeyRing
from app.container import Probe, Services
from app.core.config import Settings
from app.core.lifecycle import Lifecycle
from app.observability.metrics import Metrics
from app.providers.registry import ModelRegistry
from app.services.completions import Completions
from app.services.generation import Generator
from app.services.sessions import SessionService

# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
# two thread hops per request for what is an attribute lookup (seen in bench/profile.py's profile).


async def get_services(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_registry(services: ServicesDep) -> ModelRegistry:
    return services.registry


async def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_completions(services: ServicesDep) -> Completions:
    return services.completions


async def get_generator(services: ServicesDep) -> Generator:
    return services.generator


async def get_sessions(services: ServicesDep) -> SessionService:
    return services.sessions


async def get_keyring(services: ServicesDep) -> KeyRing:
    return services.keyring


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


async def get_lifecycle(services: ServicesDep) -> Lifecycle:
    return services.lifecycle


async def get_probes(services: ServicesDep) -> dict[str, Probe]:
    return services.probes


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
CompletionsDep = Annotated[Completions, Depends(get_completions)]
GeneratorDep = Annotated[Generator, Depends(get_generator)]
SessionsDep = Annotated[SessionService, Depends(get_sessions)]
KeyRingDep = Annotated[KeyRing, Depends(get_keyring)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
ProbesDep = Annotated[dict[str, Probe], Depends(get_probes)]
