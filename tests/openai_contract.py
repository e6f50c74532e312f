"""OpenAI's published contract: every chat completion, Responses object and event, and embeddings
answer the API tests receive is validated against the schemas vendored from openai/openai-openapi
(tests/openai_spec/*.json, their commit and MIT licence beside them; `scripts/vendor_openai_schemas.py`)."""

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

SPECS = Path(__file__).resolve().parent / "openai_spec"
#: Which vendored file holds a schema.
FILES = {
    "CreateChatCompletionResponse": "chat_completions.json",
    "CreateChatCompletionStreamResponse": "chat_completions.json",
    "CreateEmbeddingResponse": "embeddings.json",
}


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    document = json.loads((SPECS / FILES.get(name, "responses.json")).read_text())
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


def assert_valid(name: str, value: Any) -> None:
    found = problems(name, value)
    assert not found, (name, found)


#: A Responses stream event's schema, by its `type`.
RESPONSE_EVENTS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "error": "ResponseErrorEvent",
}


def assert_response_event(event: dict[str, Any]) -> None:
    assert event.get("type") in RESPONSE_EVENTS, f"not an event of OpenAI's Responses stream: {event.get('type')!r}"
    assert_valid(RESPONSE_EVENTS[event["type"]], event)


def _json_schema(request: httpx.Request) -> str | None:
    """The schema of a JSON answer to this request, if the contract has one here."""
    path = request.url.path
    if path.endswith("/chat/completions"):
        return "CreateChatCompletionResponse"
    if path.endswith("/embeddings"):
        # The spec types `embedding` as numbers only: a base64 answer (the SDK's default) is not described.
        asked = json.loads(request.content or b"{}")
        return None if asked.get("encoding_format") == "base64" else "CreateEmbeddingResponse"
    if path.endswith("/input_items"):
        return "ResponseItemList"
    if "/responses" in path and request.method in ("GET", "POST"):
        return "Response"
    return None


def _check_event(path: str, chunk: dict[str, Any]) -> None:
    if "/responses" in path:
        assert_response_event(chunk)
    elif "error" not in chunk:
        assert_chunk(chunk)


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

    def __init__(self, inner: httpx.SyncByteStream, checked: list[str], path: str) -> None:
        self.inner = inner
        self.checked = checked
        self.path = path
        self.buffer = b""

    def __iter__(self) -> Iterator[bytes]:
        for part in self.inner:
            self.buffer += part
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                text = line.decode().strip()
                if text.startswith("data: ") and text != "data: [DONE]":
                    _check_event(self.path, json.loads(text[6:]))
                    self.checked.append("event" if "/responses" in self.path else "chunk")
            yield part

    def close(self) -> None:
        self.inner.close()


class CheckingTransport(httpx.BaseTransport):
    """Checks every chat completion and chunk, Responses object and event, and embeddings answer a
    test's client receives against OpenAI's schemas."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.checked: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        schema = _json_schema(request)
        if schema is None or response.status_code != 200:
            return response
        kind = response.headers.get("content-type", "")
        if kind.startswith("application/json"):
            body = b"".join(response.stream)
            assert_valid(schema, json.loads(body))
            self.checked.append("completion" if schema == "CreateChatCompletionResponse" else schema)
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        if kind.startswith("text/event-stream"):
            assert isinstance(response.stream, httpx.SyncByteStream)
            response.stream = _CheckedStream(response.stream, self.checked, request.url.path)
        return response

    def close(self) -> None:
        self.inner.close()
