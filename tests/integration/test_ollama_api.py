"""Ollama's API on Slipway, through the official `ollama` Python client (sync and async) and
LangChain's ChatOllama, on the embedded model: what Open WebUI, Copilot's Ollama provider, Continue
and a notebook's ChatOllama call."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import httpx
import ollama
import pytest
from langchain_ollama import ChatOllama

from app.chains import summarize
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the capital of France? One word."}]


@pytest.fixture(scope="module")
def client(server: SlipwayServer) -> ollama.Client:
    return ollama.Client(host=server.url)


def test_probe_sequence_of_copilot_and_continue(server: SlipwayServer) -> None:
    """`GET /` says Ollama is running (a browser still gets the page); version >= 0.6.4; tags with a
    `model` per entry; show with capabilities and model_info; an empty bearer header is fine."""
    empty_bearer = {"Authorization": "Bearer"}
    # Copilot sends `Authorization: Bearer ` (a trailing space, which httpx will not send): raw.
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/version HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: Bearer \r\nConnection: close\r\n\r\n".encode()
        )
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    assert raw.startswith(b"HTTP/1.1 200") and b'"version"' in raw
    assert httpx.get(server.url + "/", headers=empty_bearer).text == "Ollama is running"
    page = httpx.get(server.url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    version = httpx.get(server.url + "/api/version", headers=empty_bearer).json()["version"]
    assert tuple(int(p) for p in version.split(".")) >= (0, 6, 4)
    tags = httpx.get(server.url + "/api/tags", headers=empty_bearer).json()["models"]
    assert [t["model"] for t in tags] == ["smollm2:latest"] and tags[0]["name"] == "smollm2:latest"
    shown = httpx.post(server.url + "/api/show", json={"model": "smollm2:latest"}, headers=empty_bearer).json()
    assert "tools" in shown["capabilities"] and "completion" in shown["capabilities"]
    assert shown["model_info"]["general.architecture"] == "llama"
    assert shown["model_info"]["llama.context_length"] == 2048


def test_sync_client_lists_shows_and_chats(client: ollama.Client) -> None:
    assert [m.model for m in client.list().models] == ["smollm2:latest"]
    assert client.show("smollm2").capabilities == ["completion", "tools"]
    assert [m.model for m in client.ps().models] == ["smollm2:latest"]
    answer = client.chat(model="smollm2", messages=QUESTION, options={"temperature": 0, "num_predict": 16})
    assert "Paris" in answer.message.content and answer.done and answer.done_reason == "stop"
    assert answer.prompt_eval_count > 10 and 0 < answer.eval_count <= 16
    assert answer.total_duration >= answer.eval_duration > 0
    parts = list(
        client.chat(
            model="smollm2:latest", messages=QUESTION, stream=True, options={"temperature": 0, "num_predict": 16}
        )
    )
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.message.content for p in parts) == answer.message.content
    generated = client.generate(model="smollm2", prompt="Say hello.", options={"num_predict": 8})
    assert generated.response and generated.done and generated.eval_count <= 8


async def test_async_client_streams(server: SlipwayServer) -> None:
    client = ollama.AsyncClient(host=server.url)
    parts = [
        p async for p in await client.chat(model="smollm2", messages=QUESTION, stream=True, options={"num_predict": 8})
    ]
    assert parts[-1].done and "".join(p.message.content for p in parts)
    generated = [
        p async for p in await client.generate(model="smollm2", prompt="Hi", stream=True, options={"num_predict": 4})
    ]
    assert generated[-1].done and generated[-1].eval_count <= 4


def test_json_format_and_tools(client: ollama.Client) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}}, "required": ["city"]}
    answer = client.chat(model="smollm2", messages=QUESTION, format=schema, options={"num_predict": 60})
    assert isinstance(json.loads(answer.message.content)["city"], str)
    tools = [
        {"type": "function", "function": {"name": "weather", "description": "Weather in a city", "parameters": schema}}
    ]
    answered = client.chat(model="smollm2", messages=[{"role": "user", "content": "Weather in Rome?"}], tools=tools)
    assert answered.done  # the 135M model may answer in words or call; either way the shape holds
    for call in answered.message.tool_calls or []:
        assert call.function.name == "weather" and isinstance(call.function.arguments, dict)


def test_errors_are_ollamas_shape(client: ollama.Client, server: SlipwayServer) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="llama9", messages=QUESTION)
    assert missing.value.status_code == 404 and "llama9" in missing.value.error
    with pytest.raises(ollama.ResponseError) as pulled:
        client.pull("llama3.1")
    assert pulled.value.status_code == 400 and "models file" in pulled.value.error
    bad = httpx.post(server.url + "/api/chat", content=b"{not json")
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    # `curl -d` sends a form content type: Ollama reads the body as JSON anyway, so does Slipway.
    form = httpx.post(
        server.url + "/api/generate",
        content=json.dumps({"model": "smollm2", "prompt": "Hi", "stream": False, "options": {"num_predict": 2}}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 200 and form.json()["done"] is True


def test_chat_ollama_runs_a_project_chain_by_changing_base_url_only(server: SlipwayServer) -> None:
    model = ChatOllama(base_url=server.url, model="smollm2", temperature=0, num_predict=24)
    assert model.invoke("Say hello.").content
    assert "".join(chunk.content for chunk in model.stream("Say hello."))
    text = "Bread is made from flour, water, salt and yeast. It is baked in an oven."
    assert summarize(model).invoke({"text": text, "sentences": 1})


def test_official_javascript_client(server: SlipwayServer, js_clients: Path) -> None:
    done = subprocess.run(
        ["node", "ollama_client.mjs", server.url, "smollm2"],
        cwd=js_clients,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["list"] == ["smollm2:latest"] and "tools" in seen["capabilities"]
    assert "Paris" in seen["chat"]["content"] and seen["chat"]["done"]
    assert seen["stream"]["content"] == seen["chat"]["content"] and seen["stream"]["done_reason"] == "stop"
    assert seen["generate"]["response"] and seen["generate"]["done"]
