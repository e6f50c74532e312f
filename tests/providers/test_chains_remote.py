"""A chain switches provider by naming another model, and gets that model's fallbacks and errors."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.providers.conftest import StandIns
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model

QA = {"question": "Who designed the tower?", "context": "The Eiffel Tower was designed by Gustave Eiffel's company."}


def invoke(server: SlipwayServer, chain: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chains/{chain}/invoke", json=body, timeout=60)


def test_same_chain_on_gemini_and_ollama(remote: SlipwayServer, standins: StandIns) -> None:
    for model, standin, upstream in (
        ("gemini-flash", standins.gemini, "gemini-3.8-flash"),
        ("llama3.1", standins.ollama, "llama3.1:8b"),
    ):
        r = invoke(remote, "qa", {"input": QA, "model": model, "params": {"temperature": 0}})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == model and r.headers["x-slipway-model"] == model
        assert r.json()["output"] == standin.answers_for(upstream)[-1].text
        sent = repr(standin.requests_for(upstream)[-1].body)
        assert "Gustave Eiffel's company" in sent and "Who designed the tower?" in sent


def test_chain_falls_back_like_chat(remote: SlipwayServer) -> None:
    r = invoke(remote, "summarize", {"input": {"text": "Paris is the capital of France."}, "model": "primary-down"})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "smollm2" and r.headers["x-slipway-model"] == "smollm2"


def test_chain_on_an_unreachable_model_is_503(remote: SlipwayServer) -> None:
    r = invoke(remote, "qa", {"input": QA, "model": "ollama-refused"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unreachable"
    r = httpx.post(f"{remote.url}/v1/chains/qa/stream", json={"input": QA, "model": "gemini-5xx"}, timeout=60)
    assert r.status_code == 503 and "HTTP 503" in r.json()["error"]["message"]


def test_a_failure_mid_stream_is_langserves_error_event(remote: SlipwayServer) -> None:
    """`status_code` and `message` (what LangServe's RemoteRunnable raises from), with OpenAI's error
    object beside them; then `end`."""
    events = []
    with httpx.stream(
        "POST", f"{remote.url}/v1/chains/qa/stream", json={"input": QA, "model": "ollama-cut"}, timeout=60
    ) as r:
        assert r.status_code == 200
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
    kinds = [k for k, _ in events]
    assert kinds[0] == "data" and kinds[-2:] == ["error", "end"], kinds
    error = events[-2][1]
    assert error["status_code"] >= 500 and error["message"] == error["error"]["message"]
