"""The direct route handler (`app.api.routing.direct_handler`) answers exactly what FastAPI's own
handler answers, for every body: the same app is built twice, once with the direct handler and once
without it, and each request's status and body must be equal. Valid JSON bodies must take the direct
path and everything else FastAPI's, which the counting fallback shows.

The container here is a fake (`FakeServices`, a plain object with one attribute): only the route
layer is under test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from starlette.responses import Response

from app.api import routing
from app.api.deps import part
from app.api.errors import on_validation_error
from app.api.responses import JSONResponse


class Body(BaseModel):
    model: str
    temperature: float | None = Field(default=None, ge=0, le=2)
    messages: list[dict[str, str]]


@dataclass
class FakeServices:
    """Stands in for `app.container.Services`: the one part the route picks."""

    greeting: str = "hello"


Greeting = Annotated[str, part(lambda s: s.greeting)]


def build(*, direct: bool, monkeypatch: pytest.MonkeyPatch, counts: dict[str, int]) -> FastAPI:
    real = routing.direct_handler

    def counting(dependant: Any, body: Any, fallback: Any, overrides: Any = None) -> Any:
        async def counted_fallback(request: Request) -> Response:
            counts["fastapi"] += 1
            return await fallback(request)

        handler = real(dependant, body, counted_fallback, overrides) if direct else None
        if handler is None:
            return None

        async def counted(request: Request) -> Response:
            counts["calls"] += 1
            return await handler(request)

        return counted

    monkeypatch.setattr(routing, "direct_handler", counting)
    router = APIRouter(prefix="/v1", route_class=routing.SlipwayRoute)

    @router.post("/echo", response_model=None)
    async def echo(body: Body, request: Request, greeting: Greeting) -> Response:
        return JSONResponse({"greeting": greeting, "body": body.model_dump(), "path": request.url.path})

    @router.post("/plain")
    async def plain(body: Body) -> dict[str, Any]:  # FastAPI serialises what it returns: not direct
        return {"model": body.model}

    app = FastAPI(exception_handlers={RequestValidationError: on_validation_error})  # type: ignore[dict-item]
    app.state.services = FakeServices()
    app.include_router(router)
    for route in app.router.routes:  # build the route handlers now, while this app's patch is in place
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            candidates()
    return app


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, TestClient, dict[str, int]]]:
    counts = {"calls": 0, "fastapi": 0}
    direct_app = build(direct=True, monkeypatch=monkeypatch, counts=counts)
    reference = build(direct=False, monkeypatch=monkeypatch, counts={"calls": 0, "fastapi": 0})
    with TestClient(direct_app) as a, TestClient(reference) as b:
        yield a, b, counts


VALID = b'{"model": "m", "temperature": 0.5, "messages": [{"role": "user", "content": "hi"}]}'
BODIES: list[tuple[str, bytes, dict[str, str], bool]] = [
    # (case, body, headers, whether the direct path answers)
    ("valid", VALID, {"content-type": "application/json"}, True),
    ("valid, charset", VALID, {"content-type": "application/json; charset=utf-8"}, True),
    ("valid, upper case", VALID, {"content-type": "Application/JSON"}, True),
    ("vendor json type", VALID, {"content-type": "application/vnd.api+json"}, False),
    ("text/plain", VALID, {"content-type": "text/plain"}, False),
    ("no content type", VALID, {}, False),
    ("invalid JSON", b'{"model": ', {"content-type": "application/json"}, False),
    ("empty body", b"", {"content-type": "application/json"}, False),
    ("not an object", b"[1, 2]", {"content-type": "application/json"}, False),
    ("missing field", b'{"model": "m"}', {"content-type": "application/json"}, False),
    ("out of range", b'{"model": "m", "temperature": 9, "messages": []}', {"content-type": "application/json"}, False),
    ("NaN", b'{"model": "m", "temperature": NaN, "messages": []}', {"content-type": "application/json"}, False),
    (
        "huge integer",
        b'{"model": "m", "temperature": 1' + b"0" * 40 + b', "messages": []}',
        {"content-type": "application/json"},
        False,
    ),
    ("lone surrogate", b'{"model": "\\ud800", "messages": []}', {"content-type": "application/json"}, False),
    ("invalid UTF-8", b'{"model": "\xff", "messages": []}', {"content-type": "application/json"}, False),
]


@pytest.mark.parametrize(("case", "body", "headers", "direct"), BODIES, ids=[b[0] for b in BODIES])
def test_same_answer_as_fastapi(
    clients: tuple[TestClient, TestClient, dict[str, int]],
    case: str,
    body: bytes,
    headers: dict[str, str],
    direct: bool,
) -> None:
    a, b, counts = clients
    mine, theirs = a.post("/v1/echo", content=body, headers=headers), b.post("/v1/echo", content=body, headers=headers)
    assert (mine.status_code, mine.content) == (theirs.status_code, theirs.content), case
    assert counts["calls"] == 1
    assert counts["fastapi"] == (0 if direct else 1), f"{case}: the wrong path answered"
    if direct:
        assert mine.json() == {
            "greeting": "hello",
            "body": {"model": "m", "temperature": 0.5, "messages": [{"role": "user", "content": "hi"}]},
            "path": "/v1/echo",
        }
    else:
        assert mine.status_code in (200, 400, 422)


def test_routes_that_are_not_simple_keep_fastapis_handler(
    clients: tuple[TestClient, TestClient, dict[str, int]],
) -> None:
    a, _, counts = clients
    response = a.post("/v1/plain", content=VALID, headers={"content-type": "application/json"})
    assert response.json() == {"model": "m"}
    assert counts["calls"] == 0  # no direct handler was built for it


def test_dependency_overrides_go_through_fastapi(
    clients: tuple[TestClient, TestClient, dict[str, int]],
) -> None:
    a, _, counts = clients
    app: FastAPI = a.app  # type: ignore[assignment]
    route_dependency = next(
        d.call
        for r in app.router.routes
        for c in (getattr(r, "effective_candidates", lambda: [])() or [])
        if getattr(c, "path", "") == "/v1/echo"
        for d in c.dependant.dependencies
    )
    app.dependency_overrides[route_dependency] = lambda: "overridden"
    response = a.post("/v1/echo", content=VALID, headers={"content-type": "application/json"})
    assert response.json()["greeting"] == "overridden"
    assert counts["fastapi"] == 1
