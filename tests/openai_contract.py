"""OpenAI's published contract for chat completions: every response and stream chunk the API tests
receive is validated against the schemas vendored from openai/openai-openapi
(tests/openai_spec/chat_completions.json, its commit and MIT licence beside it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).resolve().parent / "openai_spec" / "chat_completions.json"


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    document = json.loads(SPEC.read_text())
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource("openai.json", resource)
    return jsonschema.Draft202012Validator({"$ref": f"openai.json#/components/schemas/{name}"}, registry=registry)


def problems(name: str, value: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in _validator(name).iter_errors(value)]


def assert_completion(body: dict[str, Any]) -> None:
    """A `chat.completion` as OpenAI's schema defines it."""
    found = problems("CreateChatCompletionResponse", body)
    assert not found, found


def assert_chunk(chunk: dict[str, Any]) -> None:
    """A `chat.completion.chunk` as OpenAI's schema defines it."""
    found = problems("CreateChatCompletionStreamResponse", chunk)
    assert not found, found


def sse_chunks(text: str) -> list[dict[str, Any]]:
    """The JSON events of an SSE body (without `[DONE]`), each checked against the chunk schema."""
    chunks = []
    for line in text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[6:])
            if "error" not in chunk:
                assert_chunk(chunk)
            chunks.append(chunk)
    return chunks


class _CheckedStream(httpx.SyncByteStream):
    """An SSE body passed through unchanged, each complete `data:` chunk checked as it goes by."""

    def __init__(self, inner: httpx.SyncByteStream, checked: list[str]) -> None:
        self.inner = inner
        self.checked = checked
        self.buffer = b""

    def __iter__(self) -> Iterator[bytes]:
        for part in self.inner:
            self.buffer += part
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                text = line.decode().strip()
                if text.startswith("data: ") and text != "data: [DONE]":
                    chunk = json.loads(text[6:])
                    if "error" not in chunk:
                        assert_chunk(chunk)
                        self.checked.append("chunk")
            yield part

    def close(self) -> None:
        self.inner.close()


class CheckingTransport(httpx.BaseTransport):
    """Checks every chat completion and chunk a test's client receives against OpenAI's schemas."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.checked: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/chat/completions") or response.status_code != 200:
            return response
        kind = response.headers.get("content-type", "")
        if kind.startswith("application/json"):
            body = b"".join(response.stream)
            assert_completion(json.loads(body))
            self.checked.append("completion")
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        if kind.startswith("text/event-stream"):
            assert isinstance(response.stream, httpx.SyncByteStream)
            response.stream = _CheckedStream(response.stream, self.checked)
        return response

    def close(self) -> None:
        self.inner.close()
