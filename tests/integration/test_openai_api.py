"""The OpenAI contract against a real server and the real packaged model, through the official SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.openai_contract import CheckingTransport
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

QUESTION = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def contract() -> CheckingTransport:
    """Every completion and chunk this module's SDK client receives is checked against OpenAI's schemas."""
    return CheckingTransport()


@pytest.fixture(scope="module")
def client(server: SlipwayServer, contract: CheckingTransport) -> Iterator[openai.OpenAI]:
    http = httpx.Client(transport=contract, timeout=120)
    yield openai.OpenAI(base_url=server.url + "/v1", api_key="any", max_retries=0, http_client=http)


def test_non_streaming_answers_with_real_text(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0)
    text = out.choices[0].message.content
    assert "Paris" in text
    assert out.choices[0].finish_reason == "stop"
    assert out.model == "smollm2"
    assert out.usage.prompt_tokens > 10
    assert 0 < out.usage.completion_tokens < 60
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="smollm2",
            messages=QUESTION,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 2, "content must arrive as several deltas, not one block"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    # The streamed text is the same answer the non-streaming call gives at temperature 0.
    full = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0)
    assert "".join(deltas) == full.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_streaming_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="smollm2", messages=QUESTION, stream=True, max_tokens=5))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


async def test_async_client(server: SlipwayServer) -> None:
    aclient = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="any", max_retries=0)
    out = await aclient.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=20)
    assert out.choices[0].message.content
    stream = await aclient.chat.completions.create(
        model="smollm2", messages=QUESTION, stream=True, max_tokens=8, stream_options={"include_usage": True}
    )
    texts = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert texts
    await aclient.close()


def test_different_prompts_give_different_answers(client: openai.OpenAI) -> None:
    def ask(q: str) -> str:
        out = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "system", "content": "Answer in one short sentence."}, {"role": "user", "content": q}],
            temperature=0,
            max_tokens=40,
        )
        return out.choices[0].message.content

    a, b = ask("What is the capital of France?"), ask("What color is the sky on a clear day?")
    assert a and b and a != b
    assert "Paris" in a and "blue" in b.lower()


def test_same_seed_same_text(client: openai.OpenAI) -> None:
    def ask(seed: int, temperature: float) -> str:
        out = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Tell me a short story about a cat."}],
            temperature=temperature,
            seed=seed,
            max_tokens=30,
        )
        return out.choices[0].message.content

    assert ask(7, 0) == ask(7, 0)
    # With sampling on, the seed still fixes the text; different seeds (almost surely) differ.
    assert ask(11, 1.0) == ask(11, 1.0)
    assert len({ask(s, 1.2) for s in (1, 2, 3)}) > 1


def test_max_tokens_is_respected(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Write a long essay about the history of Rome."}],
        max_tokens=7,
    )
    assert out.choices[0].finish_reason == "length"
    assert out.usage.completion_tokens == 7


def test_stop_sequence(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Count from 1 to 10 separated by commas."}],
        temperature=0,
        stop=["5"],
        max_tokens=60,
    )
    assert "5" not in out.choices[0].message.content
    assert out.choices[0].finish_reason == "stop"


def test_client_defaults_are_accepted(server: SlipwayServer) -> None:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "n": 1,
        "logprobs": False,
        "tools": [],
        "tool_choice": None,
        "response_format": {"type": "text"},
        "temperature": None,
        "max_tokens": 4,
        "user": "someone",
        "frequency_penalty": 0,
    }
    r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


def test_models_endpoints(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["smollm2"]
    model = client.models.retrieve("smollm2")
    assert model.id == "smollm2" and model.object == "model"


def test_langchain_chat_openai_works(server: SlipwayServer) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.url + "/v1", api_key="any", model="smollm2", temperature=0, max_retries=0)
    assert "Paris" in llm.invoke(QUESTION).content
    assert "".join(c.content for c in llm.stream(QUESTION))


def test_request_id_header(server: SlipwayServer) -> None:
    r = httpx.get(server.url + "/v1/models", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = httpx.get(server.url + "/v1/models")
    assert len(r.headers["x-request-id"]) >= 16
    r = httpx.get(server.url + "/nope")
    assert r.headers["x-request-id"]


def test_stream_headers_are_unbuffered(server: SlipwayServer) -> None:
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        json={"messages": QUESTION, "stream": True, "max_tokens": 3},
        headers={"Accept-Encoding": "gzip"},
        timeout=60,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in r.headers
        assert r.headers["x-slipway-model"] == "smollm2"
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"


def test_health_and_readiness(server: SlipwayServer) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["models"]["smollm2"]["state"] == "ready"


def test_openapi_docs(server: SlipwayServer) -> None:
    assert httpx.get(server.url + "/docs").status_code == 200
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/v1/chat/completions" in spec["paths"]


async def test_concurrent_requests_queue_and_all_complete(server: SlipwayServer) -> None:
    aclient = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="any", max_retries=0)
    outs = await asyncio.gather(
        *[
            aclient.chat.completions.create(
                model="smollm2", messages=[{"role": "user", "content": f"Say the number {i}"}], max_tokens=6
            )
            for i in range(4)
        ]
    )
    assert all(o.choices[0].message.content for o in outs)
    await aclient.close()


def test_n_choices_are_generated_and_counted(client: openai.OpenAI, server: SlipwayServer) -> None:
    """`n`: the choices one after the other, each counted; with a seed, choice i uses seed + i."""
    from tests.openai_contract import assert_completion, sse_chunks

    body = {"model": "smollm2", "messages": QUESTION, "n": 3, "temperature": 1.0, "seed": 7, "max_tokens": 12}
    raw = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
    out = raw.json()
    assert_completion(out)
    assert [c["index"] for c in out["choices"]] == [0, 1, 2]
    singles = [
        client.chat.completions.create(**{**body, "n": 1, "seed": 7 + i}).choices[0].message.content for i in range(3)
    ]
    assert [c["message"]["content"] for c in out["choices"]] == singles
    one = client.chat.completions.create(**{**body, "n": 1})
    assert out["usage"]["prompt_tokens"] == 3 * one.usage.prompt_tokens
    streamed = sse_chunks(
        httpx.post(
            server.url + "/v1/chat/completions",
            json={**body, "stream": True, "stream_options": {"include_usage": True}},
            timeout=120,
        ).text
    )
    finishes = [(c["choices"][0]["index"], c["choices"][0]["finish_reason"]) for c in streamed if c["choices"]]
    assert [i for i, f in finishes if f] == [0, 1, 2]
    texts = [
        "".join(
            c["choices"][0]["delta"].get("content") or ""
            for c in streamed
            if c["choices"] and c["choices"][0]["index"] == i
        )
        for i in range(3)
    ]
    assert texts == singles
    assert streamed[-1]["usage"]["completion_tokens"] == out["usage"]["completion_tokens"]


def test_legacy_completions_answer_in_the_text_completion_shape(client: openai.OpenAI, server: SlipwayServer) -> None:
    """`POST /v1/completions` (LlamaIndex's OpenAILike.complete() posts there): the prompt goes to the
    chat model as one user message; the answer comes back as `text_completion`."""
    out = client.completions.create(
        model="smollm2", prompt="What is the capital of France?", max_tokens=12, temperature=0
    )
    assert out.object == "text_completion" and out.id.startswith("cmpl-")
    assert "Paris" in out.choices[0].text and out.choices[0].finish_reason in ("stop", "length")
    assert out.usage.completion_tokens <= 12
    chat = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=12,
        temperature=0,
    )
    assert out.choices[0].text == chat.choices[0].message.content
    parts = list(
        client.completions.create(
            model="smollm2", prompt="What is the capital of France?", max_tokens=12, temperature=0, stream=True
        )
    )
    assert all(p.object == "text_completion" for p in parts)
    assert "".join(p.choices[0].text for p in parts if p.choices) == out.choices[0].text
    assert [p.choices[0].finish_reason for p in parts if p.choices and p.choices[0].finish_reason] == [
        out.choices[0].finish_reason
    ]
    default = client.completions.create(model="smollm2", prompt="Count to fifty.")
    assert default.usage.completion_tokens <= 16, "the legacy API's default max_tokens"
    for bad, param in (
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": "x", "echo": True}, "echo"),
        ({"prompt": "x", "temperature": 3}, "temperature"),
    ):
        r = httpx.post(server.url + "/v1/completions", json=bad)
        assert r.status_code == 400, r.text
