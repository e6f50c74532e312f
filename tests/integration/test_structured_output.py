"""Structured output and tool calls on the embedded model, through real clients: the openai SDK
(`parse`, tools, the streaming helper, legacy `functions`), LangChain's ChatOpenAI
(`with_structured_output`, `bind_tools`) and a LangChain agent. Every response and chunk is checked
against OpenAI's published schemas (tests/openai_contract.py)."""

from __future__ import annotations

import json
import random
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelRequest, wrap_model_call
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.openai_contract import assert_completion, sse_chunks
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

URL = "/v1/chat/completions"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The time in a time zone.",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)
    population_millions: int = Field(ge=0, le=50)
    kind: Literal["capital", "port", "other"]


@pytest.fixture(scope="module")
def client(server: SlipwayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="any", max_retries=0)


def post(server: SlipwayServer, body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed completion, checked against OpenAI's schema."""
    r = httpx.post(server.url + URL, json={"model": "smollm2", **body}, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert_completion(out)
    return out


def stream(server: SlipwayServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A streamed completion's chunks, each checked against OpenAI's chunk schema."""
    r = httpx.post(server.url + URL, json={"model": "smollm2", "stream": True, **body}, timeout=120)
    assert r.status_code == 200, r.text
    return sse_chunks(r.text)


def test_sdk_parse_returns_a_typed_object(client: openai.OpenAI) -> None:
    out = client.chat.completions.parse(
        model="smollm2",
        messages=[{"role": "user", "content": "Describe Lisbon."}],
        response_format=City,
        temperature=0.7,
    )
    city = out.choices[0].message.parsed
    assert isinstance(city, City)
    assert out.choices[0].finish_reason == "stop"


def test_json_object_and_schema_answers_parse(server: SlipwayServer) -> None:
    ask = [{"role": "user", "content": "Give the name and age of a person as JSON."}]
    plain = post(
        server, {"messages": ask, "response_format": {"type": "json_object"}, "temperature": 0, "max_tokens": 300}
    )
    assert plain["choices"][0]["finish_reason"] == "stop"
    assert isinstance(json.loads(plain["choices"][0]["message"]["content"]), dict)
    # Cut short by max_tokens, JSON is incomplete: returned as it is with finish_reason length, as OpenAI does.
    cut = post(server, {"messages": ask, "response_format": {"type": "json_object"}, "temperature": 0, "max_tokens": 3})
    assert cut["choices"][0]["finish_reason"] == "length"
    schema = City.model_json_schema()
    body = {
        "messages": [{"role": "user", "content": "Describe Oslo."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
        "stream": False,
        "temperature": 0,
        "max_tokens": 300,
    }
    answer = post(server, body)["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(answer), schema)
    streamed = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in stream(server, {**body, "stream": True}) if c["choices"]
    )
    jsonschema.validate(json.loads(streamed), schema)


def test_named_tool_choice_gets_a_valid_call(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    assert_completion(out.model_dump(exclude_unset=True))


def test_auto_tool_choice_answers_with_text_or_a_valid_call(server: SlipwayServer) -> None:
    """`auto`: the model chooses (the 135M model mostly answers in words); either way it is well formed."""
    for question in ("What is the weather in Rome?", "Tell me a joke."):
        message = post(server, {"messages": [{"role": "user", "content": question}], "tools": [WEATHER]})["choices"][0]
        calls = message["message"].get("tool_calls")
        if calls:
            assert message["finish_reason"] == "tool_calls"
            jsonschema.validate(json.loads(calls[0]["function"]["arguments"]), WEATHER["function"]["parameters"])
        else:
            assert message["message"]["content"] and not message["message"]["content"].startswith("<")


def test_streaming_helper_accumulates_tool_call_deltas(client: openai.OpenAI, server: SlipwayServer) -> None:
    with client.chat.completions.stream(
        model="smollm2",
        messages=[{"role": "user", "content": "What time is it in Tokyo?"}],
        tools=[WEATHER, TIME],
        tool_choice="required",
    ) as events:
        final = events.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.function.name in ("get_weather", "get_time") and call.id
    raw = stream(
        server, {"messages": [{"role": "user", "content": "Time in Oslo?"}], "tools": [TIME], "tool_choice": "required"}
    )
    first = next(
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in raw
        if c["choices"] and c["choices"][0]["delta"].get("tool_calls")
    )
    assert (
        first["index"] == 0 and first["id"] and first["type"] == "function" and first["function"]["name"] == "get_time"
    )


def test_tool_results_in_the_history_are_answered(server: SlipwayServer) -> None:
    history = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 31 degrees celsius."},
    ]
    out = post(server, {"messages": history, "tools": [WEATHER], "tool_choice": "none", "temperature": 0})
    answer = out["choices"][0]["message"]["content"]
    assert out["choices"][0]["finish_reason"] == "stop" and "31" in answer


def test_legacy_functions_are_answered_as_function_call(server: SlipwayServer) -> None:
    out = post(
        server,
        {
            "messages": [{"role": "user", "content": "Weather in Madrid?"}],
            "functions": [WEATHER["function"]],
            "function_call": {"name": "get_weather"},
        },
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "function_call" and "tool_calls" not in choice["message"]
    assert choice["message"]["function_call"]["name"] == "get_weather"
    json.loads(choice["message"]["function_call"]["arguments"])


def test_langchain_structured_output_and_bound_tools(server: SlipwayServer) -> None:
    llm = ChatOpenAI(base_url=server.url + "/v1", api_key="any", model="smollm2", temperature=0)
    city = llm.with_structured_output(City).invoke("Describe Naples.")
    assert isinstance(city, City)

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    message = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Nice?")
    assert [c["name"] for c in message.tool_calls] == ["get_weather"]
    assert isinstance(message.tool_calls[0]["args"]["city"], str)


def test_a_langchain_agent_calls_a_tool_and_answers_with_its_result(server: SlipwayServer) -> None:
    """LangChain 1.x `create_agent` on the embedded model. The 135M model does not elect tools by
    itself (`auto`), so a middleware asks for a call (`required`) until a tool has answered, then for
    words (`none`): the loop (call, run the tool, answer) is the framework's own."""
    llm = ChatOpenAI(base_url=server.url + "/v1", api_key="any", model="smollm2", temperature=0)
    ran: list[str] = []

    @tool
    def secret_number(topic: str) -> str:
        """Look up the secret number for a topic."""
        ran.append(topic)
        return "4417"

    @wrap_model_call
    def tool_first(request: ModelRequest, handler: Any) -> Any:
        answered = any(isinstance(m, ToolMessage) for m in request.messages)
        return handler(request.override(tool_choice="none" if answered else "required"))

    agent = create_agent(llm, [secret_number], middleware=[tool_first])
    out = agent.invoke({"messages": [{"role": "user", "content": "What is the secret number for cats?"}]})
    assert ran, "the tool ran"
    assert "4417" in out["messages"][-1].content


def random_schema(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """Nested objects, arrays, enums, required fields, bounded numbers and strings."""
    kinds = ["string", "integer", "number", "boolean", "enum"] + (["object", "array"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "string":
        return {"type": "string", "maxLength": rng.randint(1, 12)}
    if kind == "integer":
        low = rng.randint(-50, 50)
        return {"type": "integer", "minimum": low, "maximum": low + rng.randint(0, 100)}
    if kind == "number":
        return {"type": "number"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "enum":
        return {"enum": rng.sample(["red", "green", "blue", "amber", "violet"], rng.randint(1, 4))}
    if kind == "array":
        return {"type": "array", "items": random_schema(rng, depth + 1), "maxItems": rng.randint(1, 3)}
    names = rng.sample(["id", "name", "size", "tags", "owner", "color", "count", "ok"], rng.randint(1, 4))
    properties = {name: random_schema(rng, depth + 1) for name in names}
    required = [n for n in names if rng.random() < 0.7]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def test_every_constrained_answer_parses_and_validates(server: SlipwayServer) -> None:
    """80 generations at temperature 1 over varied schemas: the grammar makes matching a guarantee.
    (80, not more: CI's time; bench/constrained.py times constrained generation at length.)"""
    rng = random.Random(20261202)
    failures = []
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for i in range(80):
            schema = {"type": "object", "properties": {"item": random_schema(rng)}, "required": ["item"]}
            body = {
                "model": "smollm2",
                "messages": [{"role": "user", "content": f"Invent item number {i}."}],
                "temperature": 1.0,
                "max_tokens": 400,
                "response_format": {"type": "json_schema", "json_schema": {"name": "item", "schema": schema}},
            }
            out = http.post(URL, json=body).json()
            text = out["choices"][0]["message"]["content"]
            try:
                jsonschema.validate(json.loads(text), schema)
            except (ValueError, jsonschema.ValidationError) as exc:
                failures.append((schema, text, out["choices"][0]["finish_reason"], str(exc)[:200]))
    assert not failures, failures[:3]


def test_extract_chain_over_http_returns_an_object_of_the_schema(server: SlipwayServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 30},
            "city": {"type": "string", "maxLength": 30},
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
        },
        "required": ["name", "city", "age"],
    }
    text = "Maria is 34 years old and lives in Porto."
    r = httpx.post(
        server.url + "/v1/chains/extract/invoke", json={"input": {"text": text, "schema": schema}}, timeout=120
    )
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    jsonschema.validate(out, schema)
    assert out["age"] == 34 and out["name"] == "Maria"
    listed = httpx.get(server.url + "/v1/chains").json()["data"]
    extract = next(c for c in listed if c["id"] == "extract")
    assert {"text", "schema"} <= set(extract["input_schema"]["properties"])
    refused = httpx.post(
        server.url + "/v1/chains/extract/invoke",
        json={
            "input": {"text": text, "schema": {"type": "object", "properties": {"n": {"type": "number", "minimum": 0}}}}
        },
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unsupported_schema"


def test_logprobs_of_the_embedded_model(server: SlipwayServer) -> None:
    """Each answer token with its log probability and the requested alternatives, streamed or not."""
    body = {
        "messages": [{"role": "user", "content": "Say hello."}],
        "logprobs": True,
        "top_logprobs": 3,
        "max_tokens": 12,
    }
    out = post(server, {**body, "temperature": 0})
    choice = out["choices"][0]
    entries = choice["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    assert len(entries) == out["usage"]["completion_tokens"]
    for entry in entries:
        alternatives = [a["logprob"] for a in entry["top_logprobs"]]
        assert len(alternatives) == 3 and alternatives == sorted(alternatives, reverse=True)
        assert entry["logprob"] <= 0 and bytes(entry["bytes"]).decode() == entry["token"]
    assert entries[0]["top_logprobs"][0]["token"] == entries[0]["token"], "greedy: the sampled token is the likeliest"
    chunks = stream(server, {**body, "temperature": 0})
    streamed = [e for c in chunks if c["choices"] for e in (c["choices"][0]["logprobs"] or {}).get("content") or []]
    assert [e["token"] for e in streamed] == [e["token"] for e in entries]
    refused = httpx.post(server.url + URL, json={"messages": body["messages"], "top_logprobs": 2})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "top_logprobs"
