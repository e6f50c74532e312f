"""Structured output and tool calls through each remote provider: Slipway sends what each real API
expects (recorded by the stand-ins: Ollama `format`/`tools`, Gemini function declarations and
`responseSchema`, OpenAI `response_format`/`tools`) and turns each answer back into OpenAI's shapes,
streamed or not; the openai SDK is the client."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.openai_contract import assert_completion
from tests.providers.conftest import StandIns
from tests.providers.standins import StandIn
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

PROVIDERS = ["ollama", "gemini", "vllm"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class Pet(BaseModel):
    name: str = Field(max_length=20)
    species: str = Field(max_length=20)


@pytest.fixture(scope="module")
def client(remote: SlipwayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=remote.url + "/v1", api_key="any", max_retries=0)


def standin_of(standins: StandIns, provider: str) -> StandIn:
    return {"ollama": standins.ollama, "gemini": standins.gemini, "vllm": standins.openai}[provider]


def last_request(standins: StandIns, provider: str, upstream: str) -> dict[str, Any]:
    body = standin_of(standins, provider).requests_for(upstream)[-1].body
    assert isinstance(body, dict)
    return body


def schema_sent(provider: str, body: dict[str, Any]) -> Any:
    """Where each API carries the schema of a structured answer."""
    if provider == "ollama":
        return body["format"]
    if provider == "gemini":
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        return config.get("responseJsonSchema") or config.get("responseSchema")
    assert body["response_format"]["type"] == "json_schema"
    return body["response_format"]["json_schema"]["schema"]


def tool_names_sent(provider: str, body: dict[str, Any]) -> list[str]:
    if provider == "gemini":
        return [d["name"] for tool in body["tools"] for d in tool["functionDeclarations"]]
    return [t["function"]["name"] for t in body["tools"]]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_parse_returns_a_typed_object(client: openai.OpenAI, standins: StandIns, provider: str) -> None:
    out = client.chat.completions.parse(
        model=f"{provider}-structured", messages=[{"role": "user", "content": "A pet, please."}], response_format=Pet
    )
    assert isinstance(out.choices[0].message.parsed, Pet)
    raw = client.chat.completions.with_raw_response.create(
        model=f"{provider}-structured",
        messages=[{"role": "user", "content": "Another pet."}],
        response_format={"type": "json_schema", "json_schema": {"name": "pet", "schema": Pet.model_json_schema()}},
    )
    assert_completion(json.loads(raw.text))
    sent = schema_sent(provider, last_request(standins, provider, "json-a"))
    assert set(sent["properties"]) == {"name", "species"}, sent


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_calls_come_back_as_openai_tool_calls(client: openai.OpenAI, standins: StandIns, provider: str) -> None:
    extra: dict[str, Any] = {} if provider == "ollama" else {"tool_choice": "required"}
    out = client.chat.completions.create(
        model=f"{provider}-tools", messages=[{"role": "user", "content": "Weather in Lima?"}], tools=[WEATHER], **extra
    )
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    assert tool_names_sent(provider, last_request(standins, provider, "tools-a")) == ["get_weather"]

    with client.chat.completions.stream(
        model=f"{provider}-tools", messages=[{"role": "user", "content": "Weather in Quito?"}], tools=[WEATHER], **extra
    ) as events:
        final = events.get_final_completion()
    (streamed,) = final.choices[0].message.tool_calls
    assert streamed.function.name == "get_weather" and final.choices[0].finish_reason == "tool_calls"
    json.loads(streamed.function.arguments)


def test_ollama_refuses_a_forced_tool_choice(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="ollama-tools", messages=[{"role": "user", "content": "x"}], tools=[WEATHER], tool_choice="required"
        )
    assert info.value.body["param"] == "tool_choice"


def test_logprobs_pass_through_openai_compatible_and_are_refused_elsewhere(
    remote: SlipwayServer, standins: StandIns
) -> None:
    body = {
        "model": "vllm-structured",
        "messages": [{"role": "user", "content": "Hi"}],
        "logprobs": True,
        "top_logprobs": 2,
    }
    r = httpx.post(remote.url + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert "".join(e["token"] for e in choice["logprobs"]["content"]) == choice["message"]["content"]
    sent = last_request(standins, "vllm", "json-a")
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    for model in ("ollama-structured", "gemini-structured"):
        refused = httpx.post(remote.url + "/v1/chat/completions", json={**body, "model": model})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "logprobs"


def test_an_ollama_client_talks_to_gemini_through_slipway(remote: SlipwayServer, standins: StandIns) -> None:
    """Ollama's API serves every models-file entry, whatever its provider."""
    import ollama

    client = ollama.Client(host=remote.url)
    assert "gemini-flash:latest" in [m.model for m in client.list().models]
    before = len(standins.gemini.requests_for("gemini-3.8-flash"))
    answer = client.chat(model="gemini-flash", messages=[{"role": "user", "content": "Hello?"}])
    assert answer.message.content and answer.done and answer.eval_count > 0
    assert len(standins.gemini.requests_for("gemini-3.8-flash")) == before + 1
    parts = list(client.chat(model="gemini-flash", messages=[{"role": "user", "content": "Hi"}], stream=True))
    assert parts[-1].done and "".join(p.message.content for p in parts)
