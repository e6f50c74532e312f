"""Per-model caps (max_tokens, messages, prompt size) enforced before any work; CORS off unless
configured; security headers on every response and a strict policy on HTML pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.middleware.headers import SecurityHeadersMiddleware
from tests.hardening.conftest import KEY, Upstream, bearer, chat_body, server_with, upstream_model
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def capped(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    tmp = Path(tmp_path_factory.mktemp("caps"))
    model = upstream_model("capped", upstream, "words-50-0", max_tokens_cap=8, max_messages=2, max_prompt_chars=40)
    with server_with(tmp, [model], SLIPWAY_API_KEYS=KEY, SLIPWAY_CORS_ORIGINS=ORIGIN) as s:
        yield s


def post(server: SlipwayServer, body: dict) -> httpx.Response:
    return httpx.post(server.url + "/v1/chat/completions", json=body, headers=bearer(), timeout=30)


def test_caps_per_model(capped: SlipwayServer) -> None:
    ok = post(capped, chat_body("Hello", max_tokens=8))
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 8
    too_many_tokens = post(capped, chat_body("Hello", max_tokens=9))
    assert too_many_tokens.status_code == 400 and too_many_tokens.json()["error"]["param"] == "max_tokens"
    new_name = post(capped, chat_body("Hello", max_completion_tokens=9))
    assert new_name.status_code == 400, "max_completion_tokens is capped the same way"
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    too_many_messages = post(capped, {"messages": messages})
    assert too_many_messages.status_code == 400 and too_many_messages.json()["error"]["param"] == "messages"
    too_long = post(capped, chat_body("x" * 41))
    assert too_long.status_code == 413 and too_long.json()["error"]["code"] == "request_too_large"
    default = post(capped, chat_body("Hello"))
    assert default.status_code == 200
    assert default.json()["usage"]["completion_tokens"] == 8, "with no max_tokens the cap still bounds the answer"


def test_cors_only_for_listed_origins(capped: SlipwayServer) -> None:
    preflight = httpx.options(
        capped.url + "/v1/chat/completions",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ORIGIN
    refused = httpx.get(capped.url + "/v1/models", headers={"Origin": ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN, (
        "a browser app can read the 401"
    )
    exposed = refused.headers["access-control-expose-headers"]
    assert "x-ratelimit-remaining-requests" in exposed and "x-request-id" in exposed
    other = httpx.options(
        capped.url + "/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_cors_is_off_by_default(upstream: Upstream, tmp_path: Path) -> None:
    with server_with(tmp_path, [upstream_model("m", upstream, "words-1-0")], SLIPWAY_API_KEYS=KEY) as s:
        preflight = httpx.options(
            s.url + "/v1/chat/completions", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers
        r = httpx.get(s.url + "/healthz", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
        docs = httpx.get(s.url + "/docs")
        assert docs.status_code == 200 and docs.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in docs.headers, "/docs starts Swagger UI with an inline script"


def test_html_pages_get_a_strict_policy() -> None:
    async def page(_: object) -> HTMLResponse:
        return HTMLResponse("<html><body>chat</body></html>")

    async def api(_: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = SecurityHeadersMiddleware(Starlette(routes=[Route("/", page), Route("/v1/x", api)]))
    with TestClient(app) as client:
        html = client.get("/")
        csp = html.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert html.headers["x-frame-options"] == "DENY" and html.headers["x-content-type-options"] == "nosniff"
        json = client.get("/v1/x")
        assert "content-security-policy" not in json.headers and json.headers["x-content-type-options"] == "nosniff"
