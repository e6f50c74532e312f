"""OpenAI's Responses API on the packaged model through the official SDK: every object and event is
checked against the Responses schemas of OpenAI's OpenAPI specification (`tests/openai_contract.py`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.openai_contract import CheckingTransport
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"
INSTRUCTIONS = "Answer in one short sentence."


@pytest.fixture(scope="module")
def contract() -> CheckingTransport:
    return CheckingTransport()


@pytest.fixture(scope="module")
def client(server: SlipwayServer, contract: CheckingTransport) -> Iterator[openai.OpenAI]:
    http = httpx.Client(transport=contract, timeout=120)
    yield openai.OpenAI(base_url=server.url + "/v1", api_key="any", max_retries=0, http_client=http)


def test_create_answers_with_real_text(client: openai.OpenAI, contract: CheckingTransport) -> None:
    out = client.responses.create(model="smollm2", input=QUESTION, instructions=INSTRUCTIONS, temperature=0)
    assert out.object == "response" and out.status == "completed"
    assert "Paris" in out.output_text
    assert out.model == "smollm2" and out.instructions == INSTRUCTIONS
    assert [item.type for item in out.output] == ["message"]
    assert out.usage is not None and out.usage.input_tokens > 10
    assert out.usage.total_tokens == out.usage.input_tokens + out.usage.output_tokens
    assert "Response" in contract.checked


def test_stream_has_openais_event_sequence(client: openai.OpenAI, contract: CheckingTransport) -> None:
    events = list(
        client.responses.create(model="smollm2", input=QUESTION, instructions=INSTRUCTIONS, temperature=0, stream=True)
    )
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 2
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    whole = client.responses.create(model="smollm2", input=QUESTION, instructions=INSTRUCTIONS, temperature=0)
    assert "".join(deltas) == final.output_text == whole.output_text
    assert client.responses.retrieve(final.id).output_text == final.output_text
    assert contract.checked.count("event") >= len(events)


def test_stream_is_framed_with_event_lines(server: SlipwayServer) -> None:
    """One framing for every stream here: LF line ends; `event:` lines where the protocol names events."""
    body = {"model": "smollm2", "input": "Hi", "max_output_tokens": 3, "stream": True}
    with httpx.stream("POST", server.url + "/v1/responses", json=body, timeout=60) as r:
        raw = r.read()
    assert b"\r" not in raw
    first = raw.split(b"\n\n")[0].split(b"\n")
    assert first[0] == b"event: response.created" and first[1].startswith(b"data: {")


def test_max_output_tokens_ends_incomplete(client: openai.OpenAI) -> None:
    out = client.responses.create(model="smollm2", input="Write a long story about the sea.", max_output_tokens=4)
    assert out.status == "incomplete"
    assert out.incomplete_details is not None and out.incomplete_details.reason == "max_output_tokens"
    assert out.usage is not None and out.usage.output_tokens == 4


def test_text_format_json_schema(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    out = client.responses.create(
        model="smollm2",
        input="Which city is the capital of France? Answer in JSON.",
        temperature=0,
        text={"format": {"type": "json_schema", "name": "capital", "schema": schema, "strict": True}},
    )
    value = json.loads(out.output_text)
    assert set(value) == {"city"}
    assert out.text.format.type == "json_schema"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]}, "input[0].arguments"),
        ({"input": "hi", "background": True}, "background"),
        ({"input": "hi", "tool_choice": "required"}, "tool_choice"),
        ({"input": []}, None),
        ({"input": "hi", "previous_response_id": "resp_unknown"}, "previous_response_id"),
    ],
)
def test_bad_requests_get_openai_errors(server: SlipwayServer, body: dict, param: str | None) -> None:
    r = httpx.post(server.url + "/v1/responses", json={"model": "smollm2", **body}, timeout=30)
    assert r.status_code in (400, 404, 422), r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param, error


def test_unknown_response_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_does_not_exist")
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_does_not_exist")
