"""Every error case of the /v1 contract: status and OpenAI's error object, over raw HTTP."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.servers import SlipwayServer


def assert_error(r: httpx.Response, status: int, *, param: str | None = None, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in err["message"]
    if param is not None:
        assert err["param"] == param
    if code is not None:
        assert err["code"] == code
    return err


URL = "/v1/chat/completions"
OK_MESSAGES = [{"role": "user", "content": "hi"}]


def test_malformed_json(server: SlipwayServer) -> None:
    r = httpx.post(server.url + URL, content=b'{"messages": [', headers={"content-type": "application/json"})
    err = assert_error(r, 400, code="invalid_json")
    assert err["type"] == "invalid_request_error"


def test_body_not_an_object(server: SlipwayServer) -> None:
    assert_error(httpx.post(server.url + URL, json=[1, 2]), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"messages": OK_MESSAGES, "temperature": 5}, "temperature"),
        ({"messages": OK_MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"messages": OK_MESSAGES, "top_p": "high"}, "top_p"),
        ({"messages": OK_MESSAGES, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_schema_violation_names_the_field(server: SlipwayServer, body: dict, param: str) -> None:
    assert_error(httpx.post(server.url + URL, json=body), 400, param=param)


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 9}, "n"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"store": True}, "store"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
        ({"tools": [TOOL], "response_format": {"type": "json_object"}}, "response_format"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"not": {"type": "string"}}}}},
            "response_format.json_schema.schema",
        ),
    ],
)
def test_unsupported_features_are_refused_not_ignored(server: SlipwayServer, extra: dict, param: str) -> None:
    r = httpx.post(server.url + URL, json={"messages": OK_MESSAGES, **extra})
    code = "unsupported_schema" if param.startswith("response_format.") else "unsupported_parameter"
    assert_error(r, 400, param=param, code=code)


def test_harmless_fields_are_accepted(server: SlipwayServer) -> None:
    harmless = {"metadata": {"team": "a"}, "store": False, "user": "u-1", "service_tier": "auto", "modalities": ["text"]}
    r = httpx.post(server.url + URL, json={"messages": OK_MESSAGES, "max_tokens": 2, **harmless})
    assert r.status_code == 200, r.text


def test_unknown_model(server: SlipwayServer) -> None:
    r = httpx.post(server.url + URL, json={"model": "gpt-9", "messages": OK_MESSAGES})
    err = assert_error(r, 404, param="model", code="model_not_found")
    assert "gpt-9" in err["message"]
    assert_error(httpx.get(server.url + "/v1/models/gpt-9"), 404, code="model_not_found")


def test_body_over_limit_declared(server: SlipwayServer) -> None:
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * (1024 * 1024 + 10) + b'"}]}'
    r = httpx.post(server.url + URL, content=big, headers={"content-type": "application/json"})
    assert_error(r, 413, code="request_too_large")


def test_body_over_limit_refused_before_it_is_all_sent(server: SlipwayServer) -> None:
    """A declared 50 MB body is refused from its headers: the server answers before reading it."""
    host, port = server.host, server.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n".encode()
            + b'{"messages": '
        )
        chunks = []
        while chunk := sock.recv(65536):  # headers and body may come in separate segments; it closes after
            chunks.append(chunk)
        data = b"".join(chunks).decode()
    assert data.startswith("HTTP/1.1 413")
    assert '"request_too_large"' in data


def test_chunked_body_over_limit(server: SlipwayServer) -> None:
    def gen():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}]}'

    r = httpx.post(server.url + URL, content=gen(), headers={"content-type": "application/json"})
    assert_error(r, 413, code="request_too_large")


def test_unknown_route(server: SlipwayServer) -> None:
    assert_error(httpx.get(server.url + "/v1/nothing-here"), 404)
    assert_error(httpx.post(server.url + "/v1/completions-nope", json={}), 404)


def test_wrong_method(server: SlipwayServer) -> None:
    assert_error(httpx.get(server.url + URL), 405)
    assert_error(httpx.delete(server.url + "/v1/models"), 405)


def test_a_prompt_over_the_context_window_is_the_clients_error(server: SlipwayServer) -> None:
    """Refused before generation (it was a 500 from inside it): 400 context_length_exceeded, no trace."""
    long = "word " * 3000
    r = httpx.post(server.url + URL, json={"messages": [{"role": "user", "content": long}]}, timeout=60)
    err = assert_error(r, 400, param="messages", code="context_length_exceeded")
    assert "maximum context length is 2048 tokens" in err["message"]


def test_stream_refused_before_first_chunk_is_a_status(server: SlipwayServer) -> None:
    long = "word " * 3000
    r = httpx.post(server.url + URL, json={"messages": [{"role": "user", "content": long}], "stream": True}, timeout=60)
    assert_error(r, 400, code="context_length_exceeded")


def test_server_still_serves_after_errors(server: SlipwayServer) -> None:
    r = httpx.post(server.url + URL, json={"messages": OK_MESSAGES, "max_tokens": 3}, timeout=60)
    assert r.status_code == 200


def test_embeddings_without_an_embedding_model_say_how_to_add_one(server: SlipwayServer) -> None:
    """The default models file has no embedding model (none runs in-process: docs/embeddings.md)."""
    r = httpx.post(server.url + "/v1/embeddings", json={"input": "hello"}, timeout=30)
    err = assert_error(r, 400, param="model", code="model_not_embedding")
    assert "kind: embedding" in err["message"]
    r = httpx.post(server.url + "/api/embed", json={"model": "smollm2", "input": "hello"}, timeout=30)
    assert r.status_code == 400 and "kind: embedding" in r.json()["error"]
