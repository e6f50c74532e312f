"""Property-based fuzzing of the request bodies with Hypothesis, against a real server on the embedded
model: arbitrary Unicode (lone surrogates, NUL, astral characters), huge and negative numbers, deep
nesting and wrong types in every field a client sends. The property: never a 5xx, every error in
OpenAI's shape, and the service answers a normal request afterwards. (Schemathesis in test_fuzz.py
covers every operation against the OpenAPI schema; this one goes after the text and the numbers.)"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

SURROGATE = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")
PLAIN = st.text(max_size=40).map(lambda t: json.dumps(t)[1:-1])  # any Unicode, JSON-escaped
TEXT = st.lists(st.one_of(PLAIN, SURROGATE, st.just("\\u0000")), max_size=4).map(lambda parts: '"' + "".join(parts) + '"')
NUMBER = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=False)).map(json.dumps)
LEAF = st.one_of(TEXT, NUMBER, st.sampled_from(["null", "true", "false", "[]", "{}"]))


def nested(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return LEAF
    inner = nested(depth - 1)
    return st.one_of(
        LEAF,
        st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["text", "type", "content", "x"]), inner, max_size=3).map(
            lambda d: "{" + ",".join(f'"{k}":{v}' for k, v in d.items()) + "}"
        ),
    )


VALUE = nested(3)
ROLE = st.one_of(st.sampled_from(['"user"', '"system"', '"assistant"', '"tool"', '"developer"']), TEXT)
MESSAGE = st.fixed_dictionaries({"role": ROLE, "content": st.one_of(TEXT, VALUE)}).map(
    lambda m: "{" + ",".join(f'"{k}":{v}' for k, v in m.items()) + "}"
)
MESSAGES = st.one_of(st.lists(MESSAGE, max_size=4).map(lambda ms: "[" + ",".join(ms) + "]"), VALUE)
CHAT = st.fixed_dictionaries(
    {"messages": MESSAGES},
    optional={
        "model": st.one_of(TEXT, st.just('"smollm2"')),
        "temperature": NUMBER,
        "top_p": NUMBER,
        "stop": st.one_of(TEXT, VALUE),
        "seed": NUMBER,
        "n": NUMBER,
        "stream": st.sampled_from(["true", "false", '"yes"']),
        "user": TEXT,
    },
).map(lambda d: "{" + ",".join(f'"{k}":{v}' for k, v in {**d, "max_tokens": "1"}.items()) + "}")
SESSION = st.fixed_dictionaries({}, optional={"title": TEXT, "system_prompt": TEXT, "model": TEXT}).map(
    lambda d: "{" + ",".join(f'"{k}":{v}' for k, v in d.items()) + "}"
)


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error


def post(client: httpx.Client, path: str, raw: str) -> httpx.Response:
    return client.post(path, content=raw.encode("utf-8"), headers={"content-type": "application/json"})


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def test_chat_completions_bodies(server: SlipwayServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:

        @FUZZ
        @given(CHAT)
        def chat(raw: str) -> None:
            check(post(client, "/v1/chat/completions", raw))

        chat()
        ok = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert ok.status_code == 200


def test_conversation_bodies(server: SlipwayServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        session = client.post("/api/sessions", json={}).json()["id"]

        @FUZZ
        @given(SESSION, st.one_of(TEXT, VALUE))
        def conversations(raw: str, content: str) -> None:
            check(post(client, "/api/sessions", raw))
            r = post(client, f"/api/sessions/{session}/messages?stream=false", '{"content":' + content + "}")
            check(r)

        conversations()
        assert client.get(f"/api/sessions/{session}").status_code == 200


def test_chain_inputs(server: SlipwayServer) -> None:
    with httpx.Client(base_url=server.url, timeout=120) as client:

        @FUZZ
        @given(VALUE)
        def chains(value: str) -> None:
            raw = '{"input":{"text":' + value + ',"sentences":' + value + '},"params":{"max_tokens":1}}'
            check(post(client, "/v1/chains/summarize/invoke", raw))

        chains()
