"""The web chat page at `/` in real headless Chromium (Debian's, driven by Playwright) against a real
Slipway whose models are the loopback stand-in of tests/sessions/standin.py (`recall` answers with the
user messages it was sent, `recall-slow` the same one word every 30 ms, `slow` 60 words 50 ms apart),
so what the page must show is known. Screenshots go to test-artifacts/screenshots/. Polled page
functions are arrow functions: the page's CSP forbids eval, which Playwright uses for plain expressions."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.chromium import browser
from tests.servers import ROOT, SlipwayServer
from tests.sessions.conftest import echo_models, messages, start_server, wait_for
from tests.sessions.standin import EchoModel

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = ROOT / "test-artifacts" / "screenshots"
KEY = "sk-slw-browser-test-0123456789abcdef0123456789abcdef"
LAST_ANSWER = "#messages .message.assistant >> nth=-1"


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoModel]:
    with EchoModel() as model:
        yield model


@pytest.fixture(scope="module")
def server(echo: EchoModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    tmp = tmp_path_factory.mktemp("web")
    models = [*echo_models(echo), echo.entry("sleepy", "slow-3000", description="Waits 3 s before each word.")]
    s = start_server(tmp, models, f"sqlite+aiosqlite:///{tmp / 'web.db'}")
    yield s
    s.stop()
    s.tmp.cleanup()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as context:
        yield context


@pytest.fixture
def page(chromium: Any, server: SlipwayServer) -> Iterator[Any]:
    page = chromium.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + "/")
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
    yield page
    page.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def send(page: Any, model: str, text: str) -> None:
    if page.locator("#model").is_enabled():
        page.select_option("#model", model)
    page.fill("#input", text)
    page.press("#input", "Enter")


def answer_status(page: Any) -> str:
    return page.locator(LAST_ANSWER).get_attribute("data-status") or ""


def wait_answer(page: Any, status: str = "complete") -> str:
    page.wait_for_function(
        "s => { const a = [...document.querySelectorAll('#messages .message.assistant')].pop();"
        " return a && a.dataset.status === s; }",
        arg=status,
        timeout=60_000,
    )
    return page.locator(LAST_ANSWER + " >> .content").inner_text()


def test_the_page_is_served_with_its_security_headers(server: SlipwayServer) -> None:
    r = httpx.get(server.url + "/", headers={"Accept": "text/html"})  # as a browser asks (else: Ollama's probe answer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["x-frame-options"] == "DENY"
    for asset in ("app.js", "markdown.js", "style.css"):
        assert httpx.get(f"{server.url}/static/{asset}").status_code == 200, asset
    assert "/" not in httpx.get(server.url + "/openapi.json").json()["paths"], "the page is not an API operation"


def test_the_answer_streams_in_token_by_token(page: Any) -> None:
    send(page, "recall-slow", "the tide comes in and the tide goes out again")
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = answer_status(page)
        text = page.locator(LAST_ANSWER + " >> .content").inner_text().strip()
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if status == "complete":
            break
        time.sleep(0.01)
    final = wait_answer(page).strip()
    assert final == "seen=2 | the tide comes in and the tide goes out again"
    partial = [t for t in seen if t != final]
    assert len(partial) >= 2, f"the text should appear in pieces before the answer completes: {seen}"
    for shorter, longer in itertools.pairwise(seen):
        assert longer.startswith(shorter), (shorter, longer)
    assert "recall-slow" in page.locator(LAST_ANSWER + " >> .meta").inner_text()


def test_stop_ends_the_generation_and_keeps_the_partial(page: Any, server: SlipwayServer) -> None:
    send(page, "slow", "tell me a long story")
    page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('#messages .message.assistant')].pop();"
        " return a && a.querySelector('.content').innerText.trim().length > 0; }"
    )
    assert page.locator("#stop").is_visible() and not page.locator("#send").is_visible()
    page.click("#stop")
    shown = wait_answer(page, "incomplete").split()
    assert "stopped" in page.locator(LAST_ANSWER + " >> .meta").inner_text()
    assert page.locator("#send").is_visible() and not page.locator("#stop").is_visible()
    sid = page.locator("#sessions button.session.current").get_attribute("data-id")
    stored = messages(server.url, sid)
    assert [(m["role"], m["status"]) for m in stored] == [("user", "complete"), ("assistant", "incomplete")]
    words = stored[1]["content"].split()
    assert 0 < len(words) < 60, "generation stopped before the end"
    assert shown == words, "the page shows what was stored"


def test_reload_and_reopen_a_session(page: Any) -> None:
    send(page, "recall", "remember the lighthouse")
    wait_answer(page)
    send(page, "recall", "and the harbour")
    assert wait_answer(page).strip() == "seen=4 | remember the lighthouse | and the harbour"
    sid = page.locator("#sessions button.session.current").get_attribute("data-id")
    assert page.url.endswith(f"#/c/{sid}"), "each conversation has its own address"
    page.reload()  # the address brings the conversation back
    page.wait_for_function("() => document.querySelectorAll('#messages .message').length === 4")
    assert page.locator("#sessions button.session.current").get_attribute("data-id") == sid
    page.click("#new-chat")
    assert page.locator("#welcome").is_visible() and page.locator("#messages .message").count() == 0
    page.go_back()  # back and forward move between conversations
    page.wait_for_function("() => document.querySelectorAll('#messages .message').length === 4")
    page.go_forward()
    page.wait_for_function("() => document.querySelectorAll('#messages .message').length === 0")
    page.goto(page.url.split("#")[0] + f"#/c/{sid}")  # a deep link in a fresh load
    page.wait_for_function("() => document.querySelectorAll('#messages .message').length === 4")
    texts = page.locator("#messages .message .content").all_inner_texts()
    assert [t.strip() for t in texts[::2]] == ["remember the lighthouse", "and the harbour"]
    assert page.locator("#model").input_value() == "recall" and page.locator("#model").is_disabled()
    send(page, "recall", "and the boats")  # the reopened conversation goes on with its history
    assert wait_answer(page).strip().startswith("seen=6 | remember the lighthouse")


def test_html_and_script_from_a_model_do_not_run(page: Any) -> None:
    payload = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> **bold** and `code`'
    send(page, "recall", payload)
    text = wait_answer(page)
    answer = page.locator(LAST_ANSWER)
    assert page.evaluate("window.__xss") is None, "model output ran as code"
    assert answer.locator("img").count() == 0 and answer.locator("script").count() == 0
    assert page.locator("#messages img, #messages script").count() == 0
    assert '<img src=x onerror="window.__xss=1">' in text and "<script>window.__xss=2</script>" in text
    assert answer.locator("strong").inner_text() == "bold" and answer.locator("code").inner_text() == "code"


@pytest.fixture(scope="module")
def keyed(echo: EchoModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    tmp = tmp_path_factory.mktemp("web-keyed")
    s = start_server(tmp, echo_models(echo), f"sqlite+aiosqlite:///{tmp / 'web.db'}", SLIPWAY_API_KEYS=KEY)
    yield s
    s.stop()
    s.tmp.cleanup()


def test_with_auth_on_the_page_asks_for_a_key(chromium: Any, keyed: SlipwayServer) -> None:
    page = chromium.new_page()
    try:
        page.goto(keyed.url + "/")
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key-input", "sk-slw-not-a-real-key")
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#key-error:not([hidden])")
        assert "refused" in page.locator("#key-error").inner_text()
        page.fill("#key-input", KEY)
        page.click("#key-form button[type=submit]")
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
        assert page.evaluate("sessionStorage.getItem('slipway.apiKey')") == KEY
        assert page.evaluate("localStorage.length") == 0, "the key is not kept beyond the tab"
        send(page, "recall", "hello with a key")  # REST with the header, then the WebSocket's auth frame
        assert wait_answer(page).strip() == "seen=2 | hello with a key"
    finally:
        page.close()


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_screenshots_and_narrow_screens(page: Any, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    send(page, "recall", "Show me **Markdown**:\n\n- a list item\n- another one\n\n```python\nprint('hello')\n```")
    wait_answer(page)
    assert page.locator(LAST_ANSWER + " >> pre code").inner_text().strip() == "print('hello')"
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "nothing overflows sideways"
    for selector in ("#input", "#send", "#model"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
    if width < 720:
        assert not page.locator("#sidebar").is_visible() or page.locator("#sidebar").bounding_box()["x"] < 0
        page.click("#toggle-sidebar")
        page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().x >= 0")
        assert page.locator("#backdrop").is_visible(), "the list opens over a backdrop"
        page.mouse.click(width - 10, height // 2)  # a tap on the backdrop closes it
        page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().right <= 0")
        assert not page.locator("#backdrop").is_visible()
        page.click("#toggle-sidebar")
        page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().x >= 0")
        page.click("#close-sidebar")  # and so does its close button
        page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().right <= 0")
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"web-{width}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    print(f"\nscreenshot: {path.relative_to(ROOT)}")


def test_screenshot_paths_are_ignored_by_git() -> None:
    assert "test-artifacts/" in Path(ROOT / ".gitignore").read_text().split()


def api_session(server: SlipwayServer, sid: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/sessions/{sid}", timeout=10)


def test_rename_search_and_delete_a_conversation(page: Any, server: SlipwayServer) -> None:
    send(page, "recall", "Plan the **voyage** to `Zanzibar` with [charts](https://example.com)")
    wait_answer(page)
    sid = page.locator("#sessions button.session.current").get_attribute("data-id")
    # The title is the first message as plain words, without Markdown's marks.
    assert page.locator("#session-title").inner_text() == "Plan the voyage to Zanzibar with charts"
    assert api_session(server, sid).json()["title"] == "Plan the voyage to Zanzibar with charts"
    assert page.locator("#sessions button.session.current time").inner_text().strip(), "a timestamp"

    page.click("#rename")
    page.fill("#rename-input", "Trip notes")
    page.fill("#system-input", "Answer like a ship's captain.")
    page.click("#rename-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('session-title').innerText === 'Trip notes'")
    stored = api_session(server, sid).json()
    assert stored["title"] == "Trip notes" and stored["system_prompt"] == "Answer like a ship's captain."
    assert page.locator(f"#sessions button.session[data-id='{sid}'] .session-name").inner_text() == "Trip notes"

    send(page, "recall", "a word only the body holds: quokka")
    wait_answer(page)
    page.fill("#search", "QUOKKA")  # found by a word in a message's body, whatever its case
    page.wait_for_function(
        "sid => { const items = [...document.querySelectorAll('#sessions button.session')];"
        " return items.length === 1 && items[0].dataset.id === sid; }",
        arg=sid,
    )
    page.fill("#search", "no-such-word-anywhere")
    page.wait_for_selector("#no-sessions:not([hidden])")
    assert "no-such-word-anywhere" in page.locator("#no-sessions").inner_text()
    page.fill("#search", "")
    page.wait_for_selector(f"#sessions button.session[data-id='{sid}']")

    page.click("#delete")
    page.wait_for_selector("#delete-dialog[open]")
    page.click("#delete-cancel")  # a confirmation first: cancelling keeps it
    assert api_session(server, sid).status_code == 200
    page.click("#delete")
    page.click("#delete-form button[type=submit]")
    page.wait_for_selector(f"#sessions button.session[data-id='{sid}']", state="detached")
    assert api_session(server, sid).status_code == 404
    assert page.url.endswith("#/") and page.locator("#welcome").is_visible()
    page.goto(server.url + f"/#/c/{sid}")  # its old address says what happened
    page.wait_for_selector("#notice:not([hidden])")
    assert "does not exist" in page.locator("#notice").inner_text()


def test_conversation_sampling_settings_and_regenerate(page: Any, server: SlipwayServer, echo: EchoModel) -> None:
    send(page, "recall", "name three harbours")
    wait_answer(page)
    sid = page.locator("#sessions button.session.current").get_attribute("data-id")
    page.click("#rename")
    page.fill("#temperature-input", "0.4")
    page.fill("#max-tokens-input", "12")
    page.click("#rename-form button[type=submit]")
    wait_for(lambda: api_session(server, sid).json()["max_tokens"] == 12)
    assert api_session(server, sid).json()["temperature"] == 0.4
    page.reload()  # the settings are the conversation's, not the page's
    page.wait_for_selector(LAST_ANSWER)
    page.click("#rename")
    assert (page.input_value("#temperature-input"), page.input_value("#max-tokens-input")) == ("0.4", "12")
    page.click("#rename-cancel")

    old = page.locator(LAST_ANSWER).get_attribute("data-id")
    assert page.locator("#regenerate").is_visible()
    page.click("#regenerate")
    page.wait_for_function(
        "old => { const a = [...document.querySelectorAll('#messages .message.assistant')].pop();"
        " return a && a.dataset.id && a.dataset.id !== old && a.dataset.status === 'complete'; }",
        arg=old,
        timeout=60_000,
    )
    new_id = page.locator(LAST_ANSWER).get_attribute("data-id")
    stored = messages(server.url, sid)
    assert [m["role"] for m in stored] == ["user", "assistant"] and str(stored[-1]["id"]) == new_id, "replaced"
    sent = echo.requests_for("recall")[-1]
    assert sent["temperature"] == 0.4 and 12 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert page.locator("#messages .message.assistant").count() == 1
    page.wait_for_selector("#regenerate:not([hidden])")

    echo.down = True  # a regeneration that fails before any text: the page shows the answer that stays
    try:
        page.click("#regenerate")
        page.wait_for_selector("#notice:not([hidden])")
        page.wait_for_function(
            "id => { const a = [...document.querySelectorAll('#messages .message.assistant')].pop();"
            " return a && a.dataset.id === id && a.dataset.status === 'complete'; }",
            arg=new_id,
            timeout=60_000,
        )
    finally:
        echo.down = False
    assert [m["id"] for m in messages(server.url, sid)] == [m["id"] for m in stored]


def test_the_empty_page_says_what_to_do_and_lists_the_models(page: Any) -> None:
    welcome = page.locator("#welcome")
    assert welcome.is_visible() and "type a message" in welcome.inner_text()
    items = page.locator("#model-list li").all_inner_texts()
    assert any(i.startswith("sleepy") and "Waits 3 s before each word." in i for i in items), items
    assert any(i.startswith("recall") for i in items)


def test_stopping_before_any_text_says_so_and_switching_waits(page: Any, server: SlipwayServer) -> None:
    send(page, "recall", "an earlier conversation")
    wait_answer(page)
    earlier = page.locator("#sessions button.session.current").get_attribute("data-id")
    page.click("#new-chat")
    send(page, "sleepy", "take your time")
    page.wait_for_selector("#stop:not([hidden])")
    current = page.url
    page.click(f"#sessions button.session[data-id='{earlier}']")  # while the answer streams
    page.wait_for_selector("#notice:not([hidden])")
    assert "still coming" in page.locator("#notice").inner_text()
    assert page.url == current, "the page stays on the conversation that is answering"
    page.keyboard.press("Escape")  # Esc stops, here before the first word
    wait_answer(page, "incomplete")
    assert "stopped before any text" in page.locator(LAST_ANSWER + " >> .meta").inner_text()
    page.click(f"#sessions button.session[data-id='{earlier}']")  # and now switching works
    page.wait_for_function("sid => location.hash === '#/c/' + sid", arg=earlier)


def test_copy_puts_the_message_on_the_clipboard(chromium: Any, page: Any) -> None:
    chromium.grant_permissions(["clipboard-read", "clipboard-write"])
    send(page, "recall", "copy **this** exactly")
    wait_answer(page)
    page.locator(LAST_ANSWER + " >> button.copy").click()
    page.wait_for_function(
        "() => document.querySelector('#messages .message.assistant:last-child .copy').textContent === 'Copied'"
    )
    assert page.evaluate("() => navigator.clipboard.readText()") == "seen=2 | copy **this** exactly"


SERIOUS = ("serious", "critical")


def axe_violations(page: Any, axe: Path) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(axe))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_accessibility_audit_finds_nothing_serious(
    scheme: str, chromium: Any, server: SlipwayServer, js_clients: Path
) -> None:
    """axe-core (npm, installed for the test only from tests/js) in the page at each state a user
    meets: the empty page, a conversation, a dialog; light and dark schemes. The audit needs its
    script injected, which the page's CSP forbids: this one page alone bypasses CSP (DevTools'
    Page.setBypassCSP), never the pages whose behaviour the other tests check."""
    axe = js_clients / "node_modules" / "axe-core" / "axe.min.js"
    page = chromium.new_page()
    try:
        chromium.new_cdp_session(page).send("Page.setBypassCSP", {"enabled": True})
        page.emulate_media(color_scheme=scheme)
        page.goto(server.url + "/")
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
        assert page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches") == (scheme == "dark")
        assert axe_violations(page, axe) == [], "empty page"
        send(page, "recall", "an accessible **answer**")
        wait_answer(page)
        page.reload()
        page.wait_for_function("() => document.querySelectorAll('#messages .message').length === 2")
        assert axe_violations(page, axe) == [], "a conversation"
        page.click("#rename")
        page.wait_for_selector("#rename-dialog[open]")
        assert axe_violations(page, axe) == [], "the settings dialog"
    finally:
        page.close()


def test_first_load_is_light(chromium: Any, server: SlipwayServer) -> None:
    """Everything the browser fetches for a first load (HTML, scripts, styles, icon, the API calls),
    counted from the bodies it received: well under 100 KB, with no third-party origin."""
    page = chromium.new_page()
    sizes: dict[str, int] = {}
    page.on("requestfinished", lambda request: sizes.__setitem__(request.url, len(request.response().body())))
    try:
        page.goto(server.url + "/", wait_until="networkidle")
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
        total = sum(sizes.values())
        print(f"\nfirst load: {len(sizes)} requests, {total / 1024:.1f} KiB")
        assert total < 100 * 1024, sizes
        assert all(url.startswith(server.url) for url in sizes), "nothing from another origin"
        assert any(url.endswith("/static/app.js") for url in sizes)
    finally:
        page.close()


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    """A Slipway holding 1,000 conversations (the embedded model: nothing is generated here)."""
    from bench.web_render import seed

    tmp = tmp_path_factory.mktemp("crowded")
    with SlipwayServer(env={"SLIPWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'crowded.db'}"}) as server:
        seed(server.url, 1000)
        yield server


def test_a_thousand_conversations_load_page_by_page_and_render(chromium: Any, crowded: SlipwayServer) -> None:
    """All 1,000 reachable through "More" (20 a page, newest first, none twice), then the render of the
    whole list measured in the browser by bench/web_render.py (printed, never asserted: shared machine)."""
    from bench.web_render import measure, report

    page = chromium.new_page()
    try:
        page.goto(crowded.url + "/")
        page.wait_for_function("() => document.querySelectorAll('#sessions button.session').length === 20")
        shown = 20
        while page.locator("#more-sessions").is_visible():
            page.click("#more-sessions")
            page.wait_for_function(
                "n => document.querySelectorAll('#sessions button.session').length > n", arg=shown, timeout=30_000
            )
            shown = page.locator("#sessions button.session").count()
        ids = page.eval_on_selector_all("#sessions button.session", "els => els.map(e => e.dataset.id)")
        assert len(ids) == len(set(ids)) == 1000
        titles = page.locator("#sessions .session-name").all_text_contents()  # off-screen items are not laid out: no innerText
        assert titles[0].startswith("Conversation 999:") and titles[-1].startswith("Conversation 0:")
        page.locator("#sessions button.session").nth(500).hover()
        assert page.locator("#sessions button.session").nth(500).get_attribute("title"), "the tooltip, on first hover"
        page.locator("#sessions button.session").nth(500).click()
        page.wait_for_function("() => location.hash.startsWith('#/c/')")
        assert page.url.endswith(f"#/c/{ids[500]}")
        result = measure(page, 1000, 5)
        print("\n" + report(result))
        assert result["conversations"] == result["rendered"] == 1000
    finally:
        page.close()
