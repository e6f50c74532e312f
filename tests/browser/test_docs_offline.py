"""/docs and /redoc render in headless Chromium with no network beyond the service itself: their
scripts and styles come from the service (no CDN), and every request the page makes stays on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.chromium import browser
from tests.servers import SlipwayServer

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as context:
        yield context


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_api_docs_render_from_the_service_alone(chromium: Any, server: SlipwayServer, path: str, rendered: str) -> None:
    page = chromium.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    try:
        page.goto(server.url + path)
        title = page.wait_for_selector(rendered, timeout=30_000)
        assert title is not None and "Slipway" in title.inner_text()
        assert "/v1/chat/completions" in page.content() or path == "/redoc"
        # ReDoc's "API docs by Redocly" footer asks for its logo from its CDN; offline it is just missing.
        decorative = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
        outside = [u for u in asked if not u.startswith((server.url, "blob:" + server.url)) and u not in decorative]
        assert asked and not outside, outside
    finally:
        page.close()
