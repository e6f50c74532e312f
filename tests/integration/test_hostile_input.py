"""Input a careless or hostile client can send gets a 4xx in OpenAI's shape, never a 5xx, and the
service answers normally afterwards: prompts over the context window, lone surrogates, huge counts."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow


def post(server: SlipwayServer, path: str, raw: str) -> httpx.Response:
    """A body as raw JSON text, so it can spell what a JSON library would not produce (`\\ud800`)."""
    return httpx.post(server.url + path, content=raw.encode(), headers={"content-type": "application/json"}, timeout=120)


def error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert "x-request-id" in r.headers
    body = r.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return body


def test_a_prompt_over_the_context_window_is_a_400_naming_both_numbers(server: SlipwayServer) -> None:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "word " * 3000}]}
    err = error(httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120), 400)
    assert err["code"] == "context_length_exceeded" and err["param"] == "messages"
    assert "maximum context length is 2048 tokens" in err["message"] and "resulted in 30" in err["message"]
    streamed = httpx.post(server.url + "/v1/chat/completions", json={**body, "stream": True}, timeout=120)
    assert error(streamed, 400)["code"] == "context_length_exceeded"  # refused before the stream starts


def test_a_chain_input_over_the_context_window_is_a_400(server: SlipwayServer) -> None:
    r = httpx.post(
        server.url + "/v1/chains/summarize/invoke", json={"input": {"text": "word " * 3000}}, timeout=120
    )
    assert error(r, 400)["code"] == "context_length_exceeded"


def test_ten_thousand_messages_are_refused_at_once(server: SlipwayServer) -> None:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "a"}] * 10_000}
    err = error(httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120), 400)
    assert err["param"] == "messages" and "at most 1000 messages" in err["message"]


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ('{"model": "smollm2", "messages": [{"role": "user", "content": "a\\ud800b"}]}', "messages.0.content"),
        ('{"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "stop": ["\\uDFFF"]}', "stop.0"),
        ('{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}', "model"),
    ],
)
def test_lone_surrogates_are_a_400_naming_the_field(server: SlipwayServer, raw: str, param: str) -> None:
    err = error(post(server, "/v1/chat/completions", raw), 400)
    assert err["param"] == param and "surrogate" in err["message"]


def test_the_service_answers_normally_after_all_of_it(server: SlipwayServer) -> None:
    for raw in ('{"model": "\\ud800"}', '{"messages": "\\udead"}'):
        assert post(server, "/v1/chat/completions", raw).status_code == 400
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 3}
    with httpx.Client(timeout=120) as client:  # one keep-alive connection across a refusal and an answer
        assert client.post(server.url + "/v1/chat/completions", content=b'{"model": "\\ud800"}',
                           headers={"content-type": "application/json"}).status_code == 400  # fmt: skip
        ok = client.post(server.url + "/v1/chat/completions", json=body)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]
