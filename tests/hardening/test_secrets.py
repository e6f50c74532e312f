"""Neither a Slipway API key nor a provider's (Gemini) key appears in any log line (DEBUG, libraries
included) or any response, whatever the request: valid key, wrong keys, keys in query strings,
provider failures. Checked by 10-character fragments, so a partial or re-wrapped leak shows too.

Not covered on purpose: a client that puts a key where the API echoes its input (a model id in
`/v1/models/{id}` comes back in the 404's message) gets its own text back; the log still scrubs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.auth.keys import generate_key
from app.providers.llama_cpp import ChatLlamaCpp, packaged_model_path
from tests.hardening.conftest import KEY, bearer, chat_body, server_with, stream_chat
from tests.providers.standins import LocalText, StandIn, gemini_routes
from tests.servers import free_port

pytestmark = pytest.mark.slow

GEMINI_KEY = "AIzaSyHardeningCheck-" + generate_key()[-20:]
WRONG_KEY = generate_key()


def fragments(secret: str, size: int = 10) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.fixture(scope="module")
def gemini() -> Iterator[StandIn]:
    model = ChatLlamaCpp(model_path=packaged_model_path(), model_name="standin", max_tokens=8)
    model.load()
    standin = StandIn("gemini", gemini_routes, LocalText(model)).start()
    yield standin
    standin.stop()
    model.close()


def test_no_key_in_any_log_line_or_response(gemini: StandIn, tmp_path: Path) -> None:
    base = {"provider": "gemini", "base_url": gemini.url, "api_key_env": "GOOGLE_API_KEY", "params": {"max_tokens": 8}}
    models = [
        {"name": "gemini", **base, "model": "secret-ok"},
        {"name": "gemini-badkey", **base, "model": "badkey-secret"},
        {"name": "gemini-5xx", **base, "model": "fail-500-secret"},
        {"name": "gemini-down", **base, "base_url": f"http://127.0.0.1:{free_port()}"},
    ]
    env = {"SLIPWAY_API_KEYS": KEY, "GOOGLE_API_KEY": GEMINI_KEY, "SLIPWAY_LOG_LEVEL": "debug"}
    with server_with(tmp_path, models, **env) as server:
        url = server.url
        chat = url + "/v1/chat/completions"
        streamed = stream_chat(url, chat_body(model="gemini", stream_options={"include_usage": True}))
        responses = [
            httpx.post(chat, json=chat_body(model="gemini"), headers=bearer(), timeout=60),
            httpx.post(chat, json=chat_body(model="gemini-badkey"), headers=bearer(), timeout=60),
            httpx.post(chat, json=chat_body(model="gemini-5xx"), headers=bearer(), timeout=60),
            httpx.post(chat, json=chat_body(model="gemini-down"), headers=bearer(), timeout=60),
            httpx.post(chat, json=chat_body(model="gemini"), headers=bearer(WRONG_KEY), timeout=60),
            httpx.post(chat, json=chat_body(model="gemini"), headers=bearer(KEY + "x"), timeout=60),
            httpx.post(chat, json=chat_body(model="gemini"), headers={"Authorization": KEY}, timeout=60),
            httpx.get(url + f"/v1/models?key={KEY}&api_key={GEMINI_KEY}", headers=bearer(), timeout=60),
            httpx.get(url + "/metrics", headers=bearer(), timeout=60),
            httpx.get(url + "/readyz", timeout=60),
            httpx.get(url + "/openapi.json", timeout=60),
        ]
        assert streamed.done and streamed.text
        statuses = [r.status_code for r in responses]
        assert statuses[0] == 200 and statuses[4:7] == [401, 401, 401] and statuses[7] == 200
        assert statuses[1] >= 400 and statuses[2] >= 500 and statuses[3] == 503
        sent = gemini.requests_for("secret-ok")
        assert sent and all(s.headers["x-goog-api-key"] == GEMINI_KEY for s in sent), "the Gemini key was used"
        server.stop()  # flush and close the log before reading all of it
        log = server.log_text()

    assert '"level": "debug"' in log and '"logger":"slipway.access"' in log, "the capture holds DEBUG and access lines"
    texts = [log, repr(streamed.events), *(r.text for r in responses), *(str(r.headers) for r in responses)]
    for secret in (KEY, GEMINI_KEY, WRONG_KEY):
        leaked = sorted({f for f in fragments(secret) for text in texts if f in text})
        assert leaked == [], f"fragments of a key found: {leaked}"
