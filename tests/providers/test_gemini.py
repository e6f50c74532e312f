"""The `gemini` provider through `langchain-google-genai` and the real `google-genai` SDK, against a
stand-in speaking Gemini's generateContent / streamGenerateContent?alt=sse REST protocol."""

from __future__ import annotations

import re

import httpx
import pytest

from app.core.config import Settings
from app.core.models_file import ModelSpec
from app.providers.registry import build_chat_model
from tests.providers.conftest import GEMINI_KEY, SYSTEM, StandIns, assert_error, chat, stream_events, streamed_text
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model


def test_non_streaming_answer_carries_the_upstream_text_and_usage(remote: SlipwayServer, standins: StandIns) -> None:
    before = len(standins.gemini.answers_for("gemini-3.8-flash"))
    r = chat(remote, "gemini-flash", temperature=0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "gemini-flash" and r.headers["x-slipway-model"] == "gemini-flash"
    answer = standins.gemini.answers_for("gemini-3.8-flash")[before]
    assert answer.text and body["choices"][0]["message"]["content"] == answer.text
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == answer.prompt_tokens
    assert body["usage"]["completion_tokens"] == answer.completion_tokens


def test_parameters_and_key_reach_gemini(remote: SlipwayServer, standins: StandIns) -> None:
    r = chat(remote, "gemini-flash", temperature=0.3, top_p=0.5, max_tokens=9, seed=11, stop=["END"])
    assert r.status_code == 200, r.text
    sent = standins.gemini.requests_for("gemini-3.8-flash")[-1]
    # /v1beta up to google-genai 2.x, /v1 from 3.x: both are Google's documented REST paths.
    assert re.fullmatch(r"/v1(beta)?/models/gemini-3\.8-flash:streamGenerateContent", sent.path), sent.path
    assert sent.query == "alt=sse"
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert "key=" not in sent.query, "the key travels in a header, never in the URL"
    config = sent.body["generationConfig"]
    assert config["temperature"] == 0.3 and config["topP"] == 0.5 and config["maxOutputTokens"] == 9
    assert config["seed"] == 11 and config["stopSequences"] == ["END"]
    assert sent.body["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}]


def test_streaming_usage_adds_up_from_cumulative_usage_metadata(remote: SlipwayServer, standins: StandIns) -> None:
    before = len(standins.gemini.answers_for("gemini-3.8-flash"))
    r, events = stream_events(remote, "gemini-flash", temperature=0, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["x-slipway-model"] == "gemini-flash"
    answer = standins.gemini.answers_for("gemini-3.8-flash")[before]
    assert streamed_text(events) == answer.text
    assert events[-1] == "[DONE]"
    assert events[-2]["usage"] == {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def test_safety_block_finishes_with_content_filter(remote: SlipwayServer) -> None:
    r = chat(remote, "gemini-safety")
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] == ""
    r, events = stream_events(remote, "gemini-safety")
    finish = [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict) and e["choices"]]
    assert finish[-1] == "content_filter"


def test_blocked_prompt_finishes_with_content_filter(remote: SlipwayServer) -> None:
    r = chat(remote, "gemini-blocked")
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] == "content_filter"


def test_missing_key_lists_the_model_as_not_configured_and_names_the_variable(remote: SlipwayServer) -> None:
    models = {m["id"]: m for m in httpx.get(remote.url + "/v1/models").json()["data"]}
    status = models["gemini-nokey"]["slipway"]
    assert status["state"] == "not_configured" and "STANDIN_UNSET_KEY" in status["detail"]
    err = assert_error(chat(remote, "gemini-nokey"), 503, "provider_not_configured")
    assert "STANDIN_UNSET_KEY" in err["message"]


def test_rate_limit_upstream_is_429_with_retry_after(remote: SlipwayServer) -> None:
    r = chat(remote, "gemini-429")
    err = assert_error(r, 429, "upstream_rate_limited")
    assert "127.0.0.1:" in err["message"] and int(r.headers["retry-after"]) > 0


def test_generate_content_from_python(standins: StandIns, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook's `invoke` uses the non-streaming endpoint; the same entry works there."""
    monkeypatch.setenv("STANDIN_PY_KEY", GEMINI_KEY)
    settings = Settings(_env_file=None)
    spec = ModelSpec(name="g", provider="gemini", base_url=standins.gemini.url, api_key_env="STANDIN_PY_KEY")
    model = build_chat_model(spec, settings)
    reply = model.invoke([("system", SYSTEM), ("human", "What is the capital of France?")], temperature=0)
    sent = standins.gemini.requests_for("gemini-3.8-flash")[-1]
    assert sent.path.endswith(":generateContent")
    answer = standins.gemini.answers_for("gemini-3.8-flash")[-1]
    # langchain-google-genai 4.4.3 returns content blocks (a list) where 4.4.2 returned a string;
    # `.text` is the text either way, and what Slipway itself reads.
    assert reply.text == answer.text
    assert reply.usage_metadata["output_tokens"] == answer.completion_tokens
    safety = build_chat_model(spec.model_copy(update={"model": "safety-py"}), settings).invoke("hi")
    assert safety.text == "" and safety.response_metadata["finish_reason"] == "SAFETY"
