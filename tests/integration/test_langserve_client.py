"""LangServe's own client, `RemoteRunnable`, on Slipway's chain routes (LangServe is archived; Slipway
serves its protocol from its own code): invoke, batch, stream, astream_log, astream_events and the
schema routes, on the embedded model."""

from __future__ import annotations

import httpx
import pytest
from langchain_core.tracers.log_stream import RunLog
from langserve import RemoteRunnable

from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

QA = {"question": "Who designed the tower?", "context": "The Eiffel Tower was designed by Gustave Eiffel's company."}


@pytest.fixture(scope="module")
def qa(server: SlipwayServer) -> RemoteRunnable:
    return RemoteRunnable(f"{server.url}/v1/chains/qa/", timeout=120)


async def test_invoke_batch_and_stream(qa: RemoteRunnable) -> None:
    answer = await qa.ainvoke(QA)
    assert isinstance(answer, str) and answer
    answers = await qa.abatch([QA, QA])
    assert len(answers) == 2 and all(isinstance(a, str) and a for a in answers)
    chunks = [chunk async for chunk in qa.astream(QA)]
    assert len(chunks) > 1 and all(isinstance(c, str) for c in chunks)


async def test_astream_log_builds_the_final_state(qa: RemoteRunnable) -> None:
    patches = [patch async for patch in qa.astream_log(QA)]
    assert len(patches) > 2
    state = patches[0]
    for patch in patches[1:]:
        state = state + patch
    assert isinstance(state, RunLog)
    streamed = "".join(str(c) for c in state.state["streamed_output"])
    assert streamed and state.state["final_output"] == streamed
    assert any(name.startswith("ServedChatModel") for name in state.state["logs"]), list(state.state["logs"])


async def test_astream_events_carry_the_model_tokens(qa: RemoteRunnable) -> None:
    events = [event async for event in qa.astream_events(QA, version="v2")]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "on_chain_start" and kinds[-1] == "on_chain_end"
    tokens = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert len(tokens) > 1, kinds
    assert events[-1]["data"]["output"]
    only_model = [e async for e in qa.astream_events(QA, version="v2", include_types=["chat_model"])]
    assert only_model and {e["event"].split("_")[1] for e in only_model} == {"chat"}


def test_schema_routes(server: SlipwayServer) -> None:
    base = f"{server.url}/v1/chains/qa"
    assert set(httpx.get(base + "/input_schema").json()["required"]) == {"question", "context"}
    assert httpx.get(base + "/output_schema").json()["type"] == "string"
    assert "properties" in httpx.get(base + "/config_schema").json()
    missing = httpx.get(f"{server.url}/v1/chains/nope/input_schema")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "chain_not_found"


def test_chain_streams_are_framed_like_the_others(server: SlipwayServer) -> None:
    """LF line ends and `event:` lines (LangServe's `data`/`end`), as the Responses stream."""
    with httpx.stream("POST", f"{server.url}/v1/chains/qa/stream", json={"input": QA}, timeout=120) as r:
        raw = r.read()
    assert b"\r" not in raw
    assert raw.startswith(b"event: data\ndata: ") and b"event: end\n" in raw
