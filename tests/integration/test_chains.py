"""Chains over HTTP (/v1/chains): schema listing, invoke, batch, stream, 400 for a missing field; the
same chain gives the same text from Python and over HTTP at temperature 0."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from app.chains import get_chain, summarize
from app.core.models_file import default_models_file
from app.providers.llama_cpp import ChatLlamaCpp
from app.providers.registry import build_chat_model
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model

GREEDY = {"temperature": 0, "max_tokens": 40}
TEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by the company of "
    "Gustave Eiffel and built from 1887 to 1889 as the entrance to the 1889 World's Fair."
)
QA = {"question": "Who designed the tower?", "context": "The Eiffel Tower was designed by Gustave Eiffel's company."}


@pytest.fixture(scope="module")
def python_model() -> Iterator[ChatLlamaCpp]:
    """The served model's entry, built in this process as a notebook would, at temperature 0."""
    spec = default_models_file().models[0]
    spec = spec.model_copy(update={"params": spec.params.model_copy(update=GREEDY)})
    model = build_chat_model(spec)
    assert isinstance(model, ChatLlamaCpp)
    yield model
    model.close()


def post(server: SlipwayServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chains/{path}", json=body, timeout=120)


def test_listing_gives_input_and_output_schemas(server: SlipwayServer) -> None:
    chains = {c["id"]: c for c in httpx.get(server.url + "/v1/chains").json()["data"]}
    assert {"chat", "summarize", "qa"} <= set(chains)
    qa = chains["qa"]["input_schema"]
    assert qa["type"] == "object" and set(qa["required"]) == {"question", "context"}
    assert chains["summarize"]["input_schema"]["properties"]["sentences"]["default"] == 3
    assert chains["chat"]["input_schema"]["required"] == ["question"]
    assert "history" in chains["chat"]["input_schema"]["properties"]
    assert all(chains[name]["output_schema"]["type"] == "string" for name in ("chat", "summarize", "qa"))
    assert chains["extract"]["output_schema"]["type"] == "object"
    assert set(chains["extract"]["input_schema"]["required"]) == {"text", "schema"}


def test_invoke_matches_python_at_temperature_0(server: SlipwayServer, python_model: ChatLlamaCpp) -> None:
    value = {"text": TEXT, "sentences": 1}
    r = post(server, "summarize/invoke", {"input": value, "model": "smollm2", "params": GREEDY})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = summarize(python_model).invoke(value)
    assert expected and body["output"] == expected
    assert body["model"] == "smollm2" and r.headers["x-slipway-model"] == "smollm2"
    assert body["usage"]["completion_tokens"] > 0 and body["usage"]["prompt_tokens"] > 0


def test_batch_matches_python(server: SlipwayServer, python_model: ChatLlamaCpp) -> None:
    unknown = {"question": "What is the capital of Peru?", "context": QA["context"]}
    r = post(server, "qa/batch", {"inputs": [QA, unknown], "params": GREEDY})
    assert r.status_code == 200, r.text
    expected = get_chain("qa", python_model).batch([QA, unknown])
    assert r.json()["output"] == expected


def test_stream_sends_chunks_then_end(server: SlipwayServer, python_model: ChatLlamaCpp) -> None:
    value = {"question": "What is my name?", "history": [{"role": "user", "content": "My name is Ada."}]}
    events: list[tuple[str, Any]] = []
    with httpx.stream(
        "POST", server.url + "/v1/chains/chat/stream", json={"input": value, "params": GREEDY}, timeout=120
    ) as r:
        assert r.status_code == 200 and r.headers["x-slipway-model"] == "smollm2"
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, orjson.loads(line.removeprefix("data: "))))
    kinds = [e for e, _ in events]
    assert kinds[-1] == "end" and set(kinds[:-1]) == {"data"} and len(kinds) > 2
    assert all(d for _, d in events[:-1]), "no empty chunks"
    assert "".join(d for _, d in events[:-1]) == get_chain("chat", python_model).invoke(value)
    assert events[-1][1]["model"] == "smollm2" and events[-1][1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("qa/invoke", {"input": {"question": "Who?"}}, "input.context"),
        ("summarize/stream", {"input": {"sentences": 2}}, "input.text"),
        ("summarize/batch", {"inputs": [{"text": "x"}, {"sentences": 1}]}, "inputs.1.text"),
    ],
)
def test_missing_field_is_400_naming_it(server: SlipwayServer, path: str, body: dict, param: str) -> None:
    r = post(server, path, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param and param in err["message"]
    assert err["type"] == "invalid_request_error" and err["code"] == "missing_required_parameter"


def test_unknown_chain_model_and_field_are_refused(server: SlipwayServer) -> None:
    r = post(server, "nope/invoke", {"input": {}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "chain_not_found"
    r = post(server, "qa/invoke", {"input": QA, "model": "no-such-model"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = post(server, "qa/invoke", {"input": {**QA, "extra": 1}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input.extra"
    r = post(server, "qa/invoke", {"model": "smollm2"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
