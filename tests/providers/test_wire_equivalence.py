"""The API path's wire clients send what the LangChain chat models sent: for the same messages,
parameters and answer shape, the stand-in records the body `ChatOllama` (through the ollama client)
and `OllamaWire` each sent, and they are equal; the text and usage that come back are equal too.
Chains still use the LangChain model, the API path the wire client: neither may drift from the other."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from app.core.config import Settings
from app.core.models_file import GenerationParams, ModelSpec
from app.core.output import TEXT, OutputSpec, ToolSpec
from app.providers.base import ChatModelStream, Piece, Stream
from app.providers.ollama import OllamaProvider
from app.providers.ollama_wire import OllamaWire
from tests.providers.conftest import StandIns

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CHAT = [SystemMessage("Answer in one short sentence."), HumanMessage("What is the capital of France?")]
TOOL_TURN = [
    HumanMessage("Weather in Lima?"),
    AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Lima"}, "id": "call_1"}]),
    ToolMessage('{"sky": "clear"}', tool_call_id="call_1"),
]
CASES: list[tuple[str, list[BaseMessage], dict[str, Any], OutputSpec]] = [
    ("plain", CHAT, {}, TEXT),
    ("params", CHAT, {"temperature": 0.0, "top_p": 0.9, "max_tokens": 12, "seed": 7, "stop": ["\n\n"]}, TEXT),
    ("json", CHAT, {"temperature": 0.0, "max_tokens": 40}, OutputSpec(json_object=True)),
    (
        "schema",
        CHAT,
        {"temperature": 0.0, "max_tokens": 40},
        OutputSpec(json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    ),
    ("tools", TOOL_TURN, {"temperature": 0.0}, OutputSpec(tools=(WEATHER,))),
]


async def collect(stream: Stream, messages: list[BaseMessage], params: dict[str, Any], output: OutputSpec) -> list[Piece]:
    return [piece async for piece in stream.stream(messages, params, output)]


@pytest.mark.parametrize(("case", "messages", "params", "output"), CASES, ids=[c[0] for c in CASES])
async def test_ollama_wire_sends_what_chatollama_sent(
    standins: StandIns, case: str, messages: list[BaseMessage], params: dict[str, Any], output: OutputSpec
) -> None:
    spec = ModelSpec(
        name="equal",
        provider="ollama",
        model=f"equal-{case}",
        base_url=standins.ollama.url,
        params=GenerationParams(max_tokens=16),
    )
    provider, settings = OllamaProvider(), Settings(_env_file=None)
    chat_model = provider.chat_model(spec, settings)
    langchain_path = ChatModelStream(provider, chat_model)
    wire = provider.stream(spec, settings, chat_model)
    assert isinstance(wire, OllamaWire)
    merged = {k: v for k, v in {"max_tokens": 16, **params}.items()}  # generation merges the entry's defaults
    try:
        by_langchain = await collect(langchain_path, messages, merged, output)
        by_wire = await collect(wire, messages, merged, output)
    finally:
        await wire.aclose()
    sent = [s.body for s in standins.ollama.requests_for(f"equal-{case}")[-2:]]
    assert sent[1] == sent[0], f"the wire client's body differs from ChatOllama's:\n{sent[1]}\n{sent[0]}"
    if params.get("temperature") == 0.0 and not output.offers_tools:
        assert "".join(p.text for p in by_wire) == "".join(p.text for p in by_langchain)
    usage = [(p.prompt_tokens, p.completion_tokens) for p in by_wire if p.prompt_tokens is not None]
    assert usage == [(p.prompt_tokens, p.completion_tokens) for p in by_langchain if p.prompt_tokens is not None]
