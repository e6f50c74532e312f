"""The `openai` provider through `langchain-openai` and the real `openai` client, against a stand-in
speaking OpenAI's chat completions protocol (what vLLM, llama.cpp's server and LiteLLM serve)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.providers.conftest import SYSTEM, VLLM_KEY, StandIns, assert_error, chat, stream_events, streamed_text
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model

UPSTREAM = "meta-llama/Llama-3.1-8B-Instruct"


def test_non_streaming_through_the_openai_sdk(remote: SlipwayServer, standins: StandIns) -> None:
    """A client SDK talks to Slipway, which talks to the upstream: both ends speak OpenAI."""
    before = len(standins.openai.answers_for(UPSTREAM))
    client = openai.OpenAI(base_url=remote.url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="vllm", messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0
    )
    answer = standins.openai.answers_for(UPSTREAM)[before]
    assert reply.model == "vllm"
    assert answer.text and reply.choices[0].message.content == answer.text
    assert reply.usage.prompt_tokens == answer.prompt_tokens
    assert reply.usage.completion_tokens == answer.completion_tokens


def test_parameters_and_key_reach_the_upstream(remote: SlipwayServer, standins: StandIns) -> None:
    r = chat(remote, "vllm", temperature=0.4, top_p=0.5, max_tokens=6, seed=5, stop=["\n"])
    assert r.status_code == 200, r.text
    sent = standins.openai.requests_for(UPSTREAM)[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {VLLM_KEY}"
    body = sent.body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"], body["seed"], body["stop"]) == (
        0.4,
        0.5,
        6,
        5,
        ["\n"],
    )
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the capital of France?"},
    ]


def test_streaming_reports_usage(remote: SlipwayServer, standins: StandIns) -> None:
    before = len(standins.openai.answers_for(UPSTREAM))
    r, events = stream_events(remote, "vllm", temperature=0, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["x-slipway-model"] == "vllm"
    answer = standins.openai.answers_for(UPSTREAM)[before]
    assert streamed_text(events) == answer.text
    assert events[-2]["usage"]["completion_tokens"] == answer.completion_tokens
    assert events[-2]["usage"]["prompt_tokens"] == answer.prompt_tokens


def test_a_named_key_variable_that_is_unset_makes_the_model_not_configured(remote: SlipwayServer) -> None:
    models = {m["id"]: m for m in httpx.get(remote.url + "/v1/models").json()["data"]}
    assert models["openai-nokey"]["slipway"]["state"] == "not_configured"
    err = assert_error(chat(remote, "openai-nokey"), 503, "provider_not_configured")
    assert "STANDIN_UNSET_KEY" in err["message"]
