"""The `ollama` provider through `langchain-ollama` and the real `ollama` client, against a stand-in
speaking Ollama's /api/chat NDJSON protocol with text from the local model."""

from __future__ import annotations

import httpx
import pytest

from tests.providers.conftest import SYSTEM, StandIns, assert_error, chat, stream_events, streamed_text
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model


def test_non_streaming_answer_carries_the_upstream_text_and_usage(remote: SlipwayServer, standins: StandIns) -> None:
    before = len(standins.ollama.answers_for("llama3.1:8b"))
    r = chat(remote, "llama3.1", temperature=0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "llama3.1" and r.headers["x-slipway-model"] == "llama3.1"
    answer = standins.ollama.answers_for("llama3.1:8b")[before]
    assert answer.text and body["choices"][0]["message"]["content"] == answer.text
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def test_parameters_reach_ollama_options(remote: SlipwayServer, standins: StandIns) -> None:
    r = chat(remote, "llama3.1", temperature=0, top_p=0.5, max_tokens=7, seed=42, stop=["\n\n", "###"])
    assert r.status_code == 200, r.text
    sent = standins.ollama.requests_for("llama3.1:8b")[-1]
    assert sent.path == "/api/chat"
    assert sent.body["stream"] is True
    assert sent.body["options"] == {
        "num_ctx": 8192,  # the entry sets no context_window: the documented remote default, never Ollama's own
        "temperature": 0,
        "top_p": 0.5,
        "num_predict": 7,
        "seed": 42,
        "stop": ["\n\n", "###"],
    }
    assert sent.body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert r.json()["usage"]["completion_tokens"] <= 7


def test_model_entry_defaults_apply_when_the_request_leaves_them_out(remote: SlipwayServer, standins: StandIns) -> None:
    assert chat(remote, "llama3.1").status_code == 200
    assert standins.ollama.requests_for("llama3.1:8b")[-1].body["options"] == {"num_ctx": 8192, "num_predict": 24}


def test_the_entrys_context_window_reaches_ollama_as_num_ctx(remote: SlipwayServer, standins: StandIns) -> None:
    assert chat(remote, "ollama-window", temperature=0.5).status_code == 200
    options = standins.ollama.requests_for("window-a")[-1].body["options"]
    assert options == {"num_ctx": 16384, "temperature": 0.5, "num_predict": 24}


def test_streaming_reports_usage_from_the_final_done_line(remote: SlipwayServer, standins: StandIns) -> None:
    before = len(standins.ollama.answers_for("llama3.1:8b"))
    r, events = stream_events(remote, "llama3.1", temperature=0, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["x-slipway-model"] == "llama3.1"
    assert events[-1] == "[DONE]"
    answer = standins.ollama.answers_for("llama3.1:8b")[before]
    assert streamed_text(events) == answer.text
    finish = [e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]]
    assert finish[-1] == "stop"
    usage = events[-2]
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == answer.prompt_tokens
    assert usage["usage"]["completion_tokens"] == answer.completion_tokens


def test_host_comes_from_ollama_host_without_base_url(remote: SlipwayServer, standins: StandIns) -> None:
    r = chat(remote, "ollama-envhost")
    assert r.status_code == 200, r.text
    assert standins.ollama.requests_for("envhost-a"), "the request reached the stand-in named by OLLAMA_HOST"


def test_model_not_pulled_says_how_to_pull_it(remote: SlipwayServer) -> None:
    err = assert_error(chat(remote, "ollama-missing"), 503, "model_not_pulled")
    assert "ollama pull missing-a" in err["message"]
    assert "127.0.0.1:" in err["message"]


def test_model_listing_names_the_provider(remote: SlipwayServer) -> None:
    models = {m["id"]: m for m in httpx.get(remote.url + "/v1/models").json()["data"]}
    assert models["llama3.1"]["owned_by"] == "ollama"
    assert models["llama3.1"]["slipway"]["provider"] == "ollama"
