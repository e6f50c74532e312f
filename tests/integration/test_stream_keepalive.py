"""SSE keep-alive: `: ping` comments flow while the model works, and clients ignore them."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pinging_server():
    # A tiny ping interval so a normal answer spans several pings (the default is 15 s).
    with SlipwayServer(env={"SLIPWAY_SSE_PING_SECONDS": "0.02"}) as s:
        yield s


def test_pings_are_sse_comments_and_stream_completes(pinging_server: SlipwayServer) -> None:
    body = {
        "messages": [{"role": "user", "content": "Write a long poem about the sea."}],
        "stream": True,
        "max_tokens": 60,
    }
    with httpx.stream("POST", pinging_server.url + "/v1/chat/completions", json=body, timeout=120) as r:
        lines = [line for line in r.iter_lines() if line]
    pings = [line for line in lines if line.startswith(":")]
    data = [line for line in lines if line.startswith("data: ")]
    assert pings, "expected `: ping` comments during a multi-second stream"
    assert all(line.startswith(": ping") for line in pings)
    assert data[-1] == "data: [DONE]"
    assert len(data) > 10


def test_openai_sdk_ignores_pings(pinging_server: SlipwayServer) -> None:
    client = openai.OpenAI(base_url=pinging_server.url + "/v1", api_key="x", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Tell me about bread."}], stream=True, max_tokens=40
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
