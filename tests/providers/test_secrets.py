"""No trace of a Gemini key in any log line (DEBUG, libraries included) or any response."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.providers.conftest import GEMINI_KEY, StandIns, chat, stream_events
from tests.servers import SlipwayServer, free_port, write_models_file

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model


def fragments(secret: str, size: int = 10) -> set[str]:
    """Every run of `size` characters of the secret: a partial or re-encoded leak still shows one."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.fixture(scope="module")
def debug_server(standins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    gemini = {"provider": "gemini", "base_url": standins.gemini.url, "api_key_env": "GOOGLE_API_KEY"}
    models = {
        "models": [
            {"name": "gemini", **gemini, "model": "leakcheck-ok"},
            {"name": "gemini-badkey", **gemini, "model": "badkey-leakcheck"},
            {"name": "gemini-5xx", **gemini, "model": "fail-500-leakcheck"},
            {"name": "gemini-down", **gemini, "base_url": f"http://127.0.0.1:{free_port()}", "retries": 1},
        ]
    }
    config = write_models_file(Path(tmp_path_factory.mktemp("leak")), models)
    env = {"GOOGLE_API_KEY": GEMINI_KEY, "SLIPWAY_LOG_LEVEL": "debug"}
    with SlipwayServer(config=config, env=env) as server:
        yield server


def test_gemini_key_never_reaches_logs_or_responses(debug_server: SlipwayServer, standins: StandIns) -> None:
    streamed, events = stream_events(debug_server, "gemini", max_tokens=8, stream_options={"include_usage": True})
    responses = [
        chat(debug_server, "gemini", max_tokens=8),
        streamed,
        chat(debug_server, "gemini-badkey"),
        chat(debug_server, "gemini-5xx"),
        chat(debug_server, "gemini-down"),
        httpx.get(debug_server.url + "/v1/models"),
        httpx.get(debug_server.url + "/readyz"),
    ]
    assert responses[0].status_code == 200 and responses[1].status_code == 200
    bad_key = responses[2].json()["error"]
    assert bad_key["code"] == "upstream_auth_failed" and "GOOGLE_API_KEY" in bad_key["message"]
    assert [r.status_code for r in responses[3:5]] == [503, 503]
    sent = standins.gemini.requests_for("leakcheck-ok")
    assert sent and all(s.headers["x-goog-api-key"] == GEMINI_KEY for s in sent), "the key was really used"

    debug_server.stop()  # flush and close the log before reading all of it
    log = debug_server.log_text()
    assert '"level": "debug"' in log, "the capture holds DEBUG output"
    # google-genai sends through aiohttp when it is installed (it is: the wire clients use it), which
    # logs no request lines; what any library does log at DEBUG is in the capture checked below.
    texts = [log, repr(events), *(r.text for r in responses if r is not streamed)]
    leaked = sorted({f for f in fragments(GEMINI_KEY) for text in texts if f in text})
    assert leaked == [], f"key fragments found: {leaked}"
