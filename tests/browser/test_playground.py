"""The chain playground at `/playground` in real headless Chromium against a real Slipway serving the
embedded model (SmolLM2, no stand-in): the form comes from the chain's input schema, invoke and stream
give what the API gives for the same input at temperature 0, the "same call" snippets run, and the
page passes the accessibility audit. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.chromium import browser
from tests.browser.test_web_page import SHOTS, axe_violations
from tests.servers import ROOT, SlipwayServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TEXT = "The harbour froze in January. Boats stayed in port for six weeks. Fishermen mended their nets."
BODY = {"input": {"text": TEXT, "sentences": 1}, "model": "smollm2", "params": {"temperature": 0, "max_tokens": 40}}


@pytest.fixture(scope="module")
def server() -> Iterator[SlipwayServer]:
    with SlipwayServer() as s:  # the packaged model alone, on SQLite
        yield s


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as context:
        yield context


@pytest.fixture
def page(chromium: Any, server: SlipwayServer) -> Iterator[Any]:
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/playground?chain=summarize")
    page.wait_for_selector("#in-text")
    yield page
    page.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def fill_summarize(page: Any) -> None:
    page.fill("#in-text", TEXT)
    page.fill("#in-sentences", "1")
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "40")


def test_the_form_comes_from_the_input_schema(page: Any, server: SlipwayServer) -> None:
    chains = [c["id"] for c in httpx.get(server.url + "/v1/chains").json()["data"]]
    assert page.locator("#chain option").all_inner_texts() == chains
    assert page.locator("label[for=in-text]").inner_text() == "Text (required)"
    assert page.locator("#in-text").get_attribute("required") is not None
    sentences = page.locator("#in-sentences")
    assert sentences.get_attribute("type") == "number" and sentences.input_value() == "3"
    assert (sentences.get_attribute("min"), sentences.get_attribute("max")) == ("1", "20")
    page.select_option("#chain", "extract")
    assert page.locator("#in-schema").evaluate("e => e.tagName") == "TEXTAREA"  # an object: JSON
    page.fill("#in-text", "Ada, 36")
    page.fill("#in-schema", "{not json")
    page.click("#invoke")
    page.wait_for_selector("#notice:not([hidden])")
    assert "schema: not valid JSON" in page.locator("#notice").inner_text()


def test_invoke_and_stream_give_what_the_api_gives(page: Any, server: SlipwayServer) -> None:
    expected = httpx.post(server.url + "/v1/chains/summarize/invoke", json=BODY, timeout=120).json()
    assert expected["output"].strip()
    fill_summarize(page)
    page.click("#invoke")
    page.wait_for_function("() => document.getElementById('stats').textContent.includes('tokens')", timeout=120_000)
    assert page.locator("#output").inner_text() == expected["output"]
    stats = page.locator("#stats").inner_text()
    usage = expected["usage"]
    assert f"{usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens" in stats

    page.click("#stream")
    page.wait_for_function("() => document.getElementById('stats').textContent.includes('pieces')", timeout=120_000)
    assert page.locator("#output").inner_text() == expected["output"], "streamed pieces add up to the answer"


def test_the_same_call_as_python_and_curl_runs(page: Any, server: SlipwayServer, tmp_path: Path) -> None:
    expected = httpx.post(server.url + "/v1/chains/summarize/invoke", json=BODY, timeout=120).json()["output"]
    fill_summarize(page)
    page.select_option("#snippet-kind", "python")
    script = page.locator("#snippet").inner_text()
    (tmp_path / "call.py").write_text(script)
    env = {**os.environ, "SLIPWAY_API_KEY": "not-needed-on-loopback"}
    ran = subprocess.run([sys.executable, "call.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == expected.strip()
    page.select_option("#snippet-kind", "curl")
    curl = page.locator("#snippet").inner_text()
    assert curl.startswith(f"curl {server.url}/v1/chains/summarize/invoke")
    assert '"sentences": 1' in curl and '"temperature": 0' in curl


def test_the_playground_is_accessible_and_fits_a_phone(
    chromium: Any, page: Any, server: SlipwayServer, js_clients: Path
) -> None:
    audit = chromium.new_page()
    try:
        chromium.new_cdp_session(audit).send("Page.setBypassCSP", {"enabled": True})
        audit.goto(server.url + "/playground")  # the first chain, `chat`: a text, a JSON list, a default
        audit.wait_for_selector("#in-question")
        assert axe_violations(audit, js_clients / "node_modules" / "axe-core" / "axe.min.js") == []
    finally:
        audit.close()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in [(1280, 800), (390, 844)]:
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width, "nothing overflows sideways"
        path = SHOTS / f"playground-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        print(f"\nscreenshot: {path.relative_to(ROOT)}")
