"""Function calling through OpenAI's Responses API (openai SDK): a call comes back as a
`function_call` output item (streamed as OpenAI's argument events), and its result, sent back as a
`function_call_output` item on `previous_response_id`, reaches the upstream as a tool message
answering the same call id."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.openai_contract import CheckingTransport
from tests.providers.conftest import StandIns
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


@pytest.fixture(scope="module")
def contract() -> CheckingTransport:
    return CheckingTransport()


@pytest.fixture(scope="module")
def client(remote: SlipwayServer, contract: CheckingTransport) -> openai.OpenAI:
    http = httpx.Client(transport=contract, timeout=60)
    return openai.OpenAI(base_url=remote.url + "/v1", api_key="any", max_retries=0, http_client=http)


def test_a_call_and_its_output_round_trip(client: openai.OpenAI, standins: StandIns) -> None:
    out = client.responses.create(model="vllm-tools", input="Weather in Lima?", tools=[WEATHER], tool_choice="required")
    calls = [item for item in out.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id
    assert isinstance(json.loads(calls[0].arguments), dict)
    sent = standins.openai.requests_for("tools-a")[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]

    client.responses.create(
        model="vllm-tools",
        previous_response_id=out.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"sky": "clear"}'}],
        tools=[WEATHER],
    )
    messages = standins.openai.requests_for("tools-a")[-1].body["messages"]
    assistant = next(m for m in messages if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["id"] == calls[0].call_id
    assert messages[-1] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": '{"sky": "clear"}'}


def test_a_streamed_call_has_openais_argument_events(client: openai.OpenAI, contract: CheckingTransport) -> None:
    events = list(
        client.responses.create(
            model="vllm-tools", input="Weather in Quito?", tools=[WEATHER], tool_choice="required", stream=True
        )
    )
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" in kinds
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.name == "get_weather" and isinstance(json.loads(done.arguments), dict)
    final = events[-1]
    assert final.type == "response.completed"
    (call,) = [item for item in final.response.output if item.type == "function_call"]
    assert call.arguments == done.arguments and call.status == "completed"
    assert contract.checked.count("event") >= len(events)
