"""Embeddings through each provider that embeds (Ollama `/api/embed`, Gemini `batchEmbedContents`, an
OpenAI-compatible `/v1/embeddings`), with the official clients on both sides: the openai SDK and the
ollama client call Slipway; Slipway calls the stand-ins with each provider's own client. The stand-ins
answer `vector_of(text)`, so a test knows which vector belongs to which input."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.openai_contract import CheckingTransport
from tests.providers.conftest import StandIns
from tests.providers.standins import EMBED_SIZE, vector_of
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

PROVIDERS = ["ollama", "gemini", "vllm"]
TEXTS = ["the quick brown fox", "jumps", "over the lazy dog"]


@pytest.fixture(scope="module")
def contract() -> CheckingTransport:
    return CheckingTransport()


@pytest.fixture(scope="module")
def client(remote: SlipwayServer, contract: CheckingTransport) -> openai.OpenAI:
    http = httpx.Client(transport=contract, timeout=60)
    return openai.OpenAI(base_url=remote.url + "/v1", api_key="any", max_retries=0, http_client=http)


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


def seen_by(standins: StandIns, provider: str) -> list[Any]:
    server = {"ollama": standins.ollama, "gemini": standins.gemini, "vllm": standins.openai}[provider]
    return server.requests_for("embed-a")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_vectors_in_input_order_with_usage(
    client: openai.OpenAI, contract: CheckingTransport, standins: StandIns, provider: str
) -> None:
    out = client.embeddings.create(model=f"{provider}-embed", input=TEXTS, encoding_format="float")
    assert [d.index for d in out.data] == [0, 1, 2]
    for text, item in zip(TEXTS, out.data, strict=True):
        assert close(item.embedding, vector_of(text)), f"the vector of {text!r} is not the upstream's"
    assert out.model == f"{provider}-embed"
    assert out.usage.prompt_tokens == out.usage.total_tokens == 9  # the stand-ins count words
    assert "CreateEmbeddingResponse" in contract.checked
    assert len(seen_by(standins, provider)) >= 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_base64_decodes_to_the_floats_and_dimensions_reach_the_upstream(
    client: openai.OpenAI, remote: SlipwayServer, standins: StandIns, provider: str
) -> None:
    floats = client.embeddings.create(model=f"{provider}-embed", input="jumps", encoding_format="float")
    raw = httpx.post(
        remote.url + "/v1/embeddings",
        json={"model": f"{provider}-embed", "input": "jumps", "encoding_format": "base64"},
        timeout=30,
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(packed) // 4}f", packed))
    assert len(decoded) == EMBED_SIZE and close(decoded, floats.data[0].embedding)
    # The SDK asks for base64 by default and decodes it itself.
    assert len(client.embeddings.create(model=f"{provider}-embed", input="jumps").data[0].embedding) == EMBED_SIZE

    short = client.embeddings.create(model=f"{provider}-embed", input=["a b", "c"], dimensions=8)
    assert [len(d.embedding) for d in short.data] == [8, 8]
    sent = seen_by(standins, provider)[-1].body
    asked = {
        "ollama": lambda b: b["dimensions"],
        "gemini": lambda b: b["requests"][0]["outputDimensionality"],
        "vllm": lambda b: b["dimensions"],
    }[provider]
    assert asked(sent) == 8


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_ollama_client_embeds_through_any_provider(remote: SlipwayServer, provider: str) -> None:
    answer = ollama.Client(host=remote.url).embed(model=f"{provider}-embed", input=TEXTS[:2])
    assert [close(list(v), vector_of(t)) for v, t in zip(answer.embeddings, TEXTS[:2], strict=True)] == [True, True]
    assert answer.prompt_eval_count == 5
    legacy = ollama.Client(host=remote.url).embeddings(model=f"{provider}-embed:latest", prompt="jumps")
    assert close(list(legacy.embedding), vector_of("jumps"))
    shown = ollama.Client(host=remote.url).show(f"{provider}-embed")
    assert shown.capabilities == ["embedding"]


def test_the_javascript_ollama_client_chats_with_gemini_and_embeds(remote: SlipwayServer, js_clients: Path) -> None:
    """The official `ollama` npm client, under Node, through Slipway to the Gemini stand-in."""
    done = subprocess.run(
        ["node", "ollama_client.mjs", remote.url, "gemini-flash", "gemini-embed"],
        cwd=js_clients,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "gemini-flash:latest" in seen["list"] and "gemini-embed:latest" in seen["list"]
    assert seen["chat"]["content"] and seen["chat"]["done"]
    assert seen["stream"]["done"] and seen["stream"]["content"]
    vectors = seen["embed"]["embeddings"]
    assert close(vectors[0], vector_of("jumps")) and close(vectors[1], vector_of("over the lazy dog"))
    assert seen["embed"]["prompt_eval_count"] == 5


async def test_the_async_ollama_client(remote: SlipwayServer) -> None:
    answer = await ollama.AsyncClient(host=remote.url).embed(model="gemini-embed", input="jumps")
    assert close(list(answer.embeddings[0]), vector_of("jumps"))


def test_kinds_are_kept_apart(client: openai.OpenAI, remote: SlipwayServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="smollm2", input="x")
    assert caught.value.code == "model_not_embedding" and "ollama-embed" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="vllm-embed", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_chat"
    r = httpx.post(remote.url + "/api/chat", json={"model": "ollama-embed", "messages": []}, timeout=30)
    assert r.status_code == 400 and "embedding model" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "vllm-embed", "input": [1, 2, 3]}, 400, "token arrays"),
        ({"model": "vllm-embed", "input": ""}, 400, "empty"),
        ({"model": "vllm-embed", "input": []}, 400, "at least one"),
        ({"model": "vllm-embed", "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"model": "nope", "input": "x"}, 404, "does not exist"),
        ({"model": "embed-down", "input": "x"}, 503, "cannot connect"),
        ({"model": "embed-5xx", "input": "x"}, 503, "HTTP 500"),
    ],
)
def test_failures_are_openai_errors_that_say_what_to_do(
    remote: SlipwayServer, body: dict[str, Any], status: int, words: str
) -> None:
    r = httpx.post(remote.url + "/v1/embeddings", json=body, timeout=60)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert words in error["message"], error
