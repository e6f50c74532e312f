"""The contract check itself (tests/openai_contract.py) refuses what OpenAI's schemas refuse: shown on
made-up bodies, named as such, behind a mock transport."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.openai_contract import CheckingTransport

FAKE_COMPLETION = {
    "id": "chatcmpl-fake",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def client_answering(body: bytes, kind: str) -> httpx.Client:
    inner = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": kind}, stream=httpx.ByteStream(body))
    )
    return httpx.Client(transport=CheckingTransport(inner), base_url="http://fake")


def test_a_valid_completion_passes_and_a_null_fingerprint_does_not() -> None:
    assert (
        client_answering(json.dumps(FAKE_COMPLETION).encode(), "application/json").post("/v1/chat/completions").json()
    )
    bad = {**FAKE_COMPLETION, "system_fingerprint": None}
    with pytest.raises(AssertionError, match="system_fingerprint"):
        client_answering(json.dumps(bad).encode(), "application/json").post("/v1/chat/completions")


def test_stream_chunks_are_checked_as_they_pass() -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "done"}],
    }
    body = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    with client_answering(body, "text/event-stream") as http, pytest.raises(AssertionError, match="finish_reason"):
        with http.stream("POST", "/v1/chat/completions") as response:
            list(response.iter_bytes())
