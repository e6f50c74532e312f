"""The API path's wire clients send what the LangChain chat models sent: for the same messages,
parameters and answer shape, the stand-in records the body `ChatOllama` (through the ollama client)
and `OllamaWire` each sent (and `ChatGoogleGenerativeAI` and `GeminiStream`), and they are equal; the
text, tool calls and usage that come back are equal too.
Chains still use the LangChain model, the API path the wire client: neither may drift from the other."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from app.core.config import Settings
from app.core.models_file import GenerationParams, ModelSpec
from app.core.output import TEXT, OutputSpec, ToolSpec
from app.providers.base import ChatModelStream, Piece, Stream
from app.providers.gemini import GeminiProvider
from app.providers.gemini_stream import GeminiStream
from app.providers.ollama import OllamaProvider
from app.providers.ollama_wire import OllamaWire
from tests.providers.conftest import GEMINI_KEY, StandIns

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
    ("tools", TOOL_TURN, {"temperature": 0.0, "max_tokens": 200}, OutputSpec(tools=(WEATHER,))),
]


def upstream(case: str) -> str:
    """The stand-in's model name: `tools-...` makes it call a tool when tools are offered."""
    return f"tools-{case}" if case == "tools" else f"equal-{case}"


async def collect(stream: Stream, messages: list[BaseMessage], params: dict[str, Any], output: OutputSpec) -> list[Piece]:
    return [piece async for piece in stream.stream(messages, params, output)]


@pytest.mark.parametrize(("case", "messages", "params", "output"), CASES, ids=[c[0] for c in CASES])
async def test_ollama_wire_sends_what_chatollama_sent(
    standins: StandIns, case: str, messages: list[BaseMessage], params: dict[str, Any], output: OutputSpec
) -> None:
    spec = ModelSpec(
        name="equal",
        provider="ollama",
        model=upstream(case),
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
    sent = [s.body for s in standins.ollama.requests_for(upstream(case))[-2:]]
    assert sent[1] == sent[0], f"the wire client's body differs from ChatOllama's:\n{sent[1]}\n{sent[0]}"
    if params.get("temperature") == 0.0:
        assert "".join(p.text for p in by_wire) == "".join(p.text for p in by_langchain)
    names = [[c["function"]["name"] for c in p.tool_calls] for p in by_wire if p.tool_calls]
    assert names == [[c["function"]["name"] for c in p.tool_calls] for p in by_langchain if p.tool_calls]
    assert bool(names) == (case == "tools")
    usage = [(p.prompt_tokens, p.completion_tokens) for p in by_wire if p.prompt_tokens is not None]
    assert usage == [(p.prompt_tokens, p.completion_tokens) for p in by_langchain if p.prompt_tokens is not None]


@pytest.mark.parametrize(("case", "messages", "params", "output"), CASES, ids=[c[0] for c in CASES])
async def test_gemini_stream_sends_what_chatgooglegenerativeai_sent(
    standins: StandIns,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    messages: list[BaseMessage],
    params: dict[str, Any],
    output: OutputSpec,
) -> None:
    monkeypatch.setenv("STANDIN_GEMINI_KEY", GEMINI_KEY)
    spec = ModelSpec(
        name="equal",
        provider="gemini",
        model=upstream(case),
        base_url=standins.gemini.url,
        api_key_env="STANDIN_GEMINI_KEY",
        params=GenerationParams(max_tokens=16),
    )
    provider, settings = GeminiProvider(), Settings(_env_file=None)
    chat_model = provider.chat_model(spec, settings)
    direct = provider.stream(spec, settings, chat_model)
    assert isinstance(direct, GeminiStream)
    merged = {"max_tokens": 16, **params}
    by_langchain = await collect(ChatModelStream(provider, chat_model), messages, merged, output)
    by_direct = await collect(direct, messages, merged, output)
    seen = standins.gemini.requests_for(upstream(case))[-2:]
    assert [s.path for s in seen] == [seen[0].path] * 2 and seen[0].query == seen[1].query
    assert seen[1].body == seen[0].body, f"the direct stream's body differs:\n{seen[1].body}\n{seen[0].body}"
    if params.get("temperature") == 0.0:
        assert "".join(p.text for p in by_direct) == "".join(p.text for p in by_langchain)
    names = [[c["function"]["name"] for c in p.tool_calls] for p in by_direct if p.tool_calls]
    assert names == [[c["function"]["name"] for c in p.tool_calls] for p in by_langchain if p.tool_calls]
    assert bool(names) == (case == "tools")
    total = [sum(p.prompt_tokens or 0 for p in got) for got in (by_direct, by_langchain)]
    assert total[0] == total[1]
    assert sum(p.completion_tokens or 0 for p in by_direct) == sum(p.completion_tokens or 0 for p in by_langchain)
