"""A conversation with the packaged local model (SmolLM2 through llama.cpp), the default provider:
history counted by the model's own tokenizer and cut to its context window, so a long conversation
keeps working (without the cut llama.cpp refuses prompts longer than its window)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import SlipwayServer
from tests.sessions.conftest import Databases, messages, new_session, say, start_server

pytestmark = pytest.mark.slow

WINDOW = 512
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    tmp = tmp_path_factory.mktemp("local")
    model = {
        "name": "smollm2",
        "provider": "local",
        "system_prompt": "Answer in one short sentence.",
        "context_window": WINDOW,
        "params": {"temperature": 0, "max_tokens": MAX_TOKENS, "seed": 1},
    }
    server = start_server(tmp, [model], Databases("sqlite", tmp).new())
    yield server
    server.stop()
    server.tmp.cleanup()


def test_a_long_conversation_stays_inside_the_window(local_server: SlipwayServer) -> None:
    sid = new_session(local_server.url)["id"]
    prompt_tokens = []
    for i in range(8):
        r = say(local_server.url, sid, f"Here is note {i} for you to keep: " + "the tide comes in and goes out. " * 8)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["status"] == "complete" and answer["model"] == "smollm2" and answer["content"]
        prompt_tokens.append(answer["usage"]["prompt_tokens"])
    # The model's own count of what it was sent: growing while the history fits, then held under the
    # window (minus the answer's room) by dropping the oldest turns.
    assert prompt_tokens[1] > prompt_tokens[0] and prompt_tokens[2] > prompt_tokens[1], prompt_tokens
    assert max(prompt_tokens) <= WINDOW - MAX_TOKENS, prompt_tokens
    assert sum(prompt_tokens[:8]) < 8 * WINDOW
    assert len(messages(local_server.url, sid)) == 16, "every turn stored, even those no longer sent"


def test_a_message_too_long_for_the_window_is_refused_before_it_is_stored(local_server: SlipwayServer) -> None:
    sid = new_session(local_server.url)["id"]
    r = say(local_server.url, sid, "word " * 1000)  # ~1000 tokens, 5,000 characters (under the content limit)
    assert r.status_code == 413 and r.json()["error"]["code"] == "context_length_exceeded"
    assert messages(local_server.url, sid) == []
