"""Request dependencies: what a route needs, typed, taken from the app's one `Services` container
(`app.container`, built by `create_app`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.auth.keyring import KeyRing
from app.container import Probe, Services
from app.core.config import Settings
from app.core.lifecycle import Lifecycle
from app.observability.metrics import Metrics
from app.providers.registry import ModelRegistry
from app.services.completions import Completions
from app.services.embeddings import Embeddings
from app.services.eval_runs import EvalRuns
from app.services.generation import Generator
from app.services.ollama import OllamaService
from app.services.responses import Responses
from app.services.sessions import SessionService
from app.services.text_completions import TextCompletions

# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
# two thread hops per request for what is an attribute lookup (seen in bench/profile.py's profile).


async def get_services(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
T = TypeVar("T")


def part(pick: Callable[[Services], T]) -> Any:
    """A dependency handing a route one part of the container (`Depends` of a typed picker)."""

    async def dependency(services: ServicesDep) -> T:
        return pick(services)

    dependency.pick = pick  # type: ignore[attr-defined]  # read by app.api.routing's direct handler
    return Depends(dependency)


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


IdentityDep = Annotated[str, Depends(get_identity)]
RegistryDep = Annotated[ModelRegistry, part(lambda s: s.registry)]
SettingsDep = Annotated[Settings, part(lambda s: s.settings)]
CompletionsDep = Annotated[Completions, part(lambda s: s.completions)]
GeneratorDep = Annotated[Generator, part(lambda s: s.generator)]
SessionsDep = Annotated[SessionService, part(lambda s: s.sessions)]
KeyRingDep = Annotated[KeyRing, part(lambda s: s.keyring)]
MetricsDep = Annotated[Metrics, part(lambda s: s.metrics)]
LifecycleDep = Annotated[Lifecycle, part(lambda s: s.lifecycle)]
ProbesDep = Annotated[dict[str, Probe], part(lambda s: s.probes)]
OllamaDep = Annotated[OllamaService, part(lambda s: s.ollama)]
TextCompletionsDep = Annotated[TextCompletions, part(lambda s: s.text_completions)]
ResponsesDep = Annotated[Responses, part(lambda s: s.responses)]
EmbeddingsDep = Annotated[Embeddings, part(lambda s: s.embeddings)]
EvalRunsDep = Annotated[EvalRuns, part(lambda s: s.eval_runs)]
