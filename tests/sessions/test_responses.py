"""The stateful half of OpenAI's Responses API through the official SDK, on SQLite and Postgres:
`previous_response_id` sends the stored conversation again (the `recall` stand-in answers with every
user message it was sent), across a restart and across two replicas on one database; retrieve,
delete and input items; another key's response is 404; `store: false` keeps nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from app.auth.keys import generate_key
from tests.openai_contract import CheckingTransport
from tests.servers import SlipwayServer
from tests.sessions.conftest import SYSTEM, Databases, echo_models, start_server
from tests.sessions.standin import EchoModel

pytestmark = pytest.mark.slow

ALICE, BOB = generate_key(), generate_key()


def client(server: SlipwayServer, key: str = "any", contract: CheckingTransport | None = None) -> openai.OpenAI:
    http = httpx.Client(transport=contract or CheckingTransport(), timeout=60)
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, http_client=http)


@pytest.fixture(scope="module")
def keyed(databases: Databases, echo: EchoModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    server = start_server(
        tmp_path_factory.mktemp("responses"), echo_models(echo), databases.new(), SLIPWAY_API_KEYS=f"{ALICE},{BOB}"
    )
    yield server
    server.stop()
    server.tmp.cleanup()


def test_previous_response_id_continues_the_stored_conversation(keyed: SlipwayServer, echo: EchoModel) -> None:
    contract = CheckingTransport()
    alice = client(keyed, ALICE, contract)
    first = alice.responses.create(model="recall", input="first question", instructions="Only for the first turn.")
    assert first.status == "completed" and first.store is True
    assert first.output_text == "seen=2 | first question"
    assert echo.requests_for("recall")[-1]["messages"][0] == {"role": "system", "content": "Only for the first turn."}

    second = alice.responses.create(model="recall", input="second question", previous_response_id=first.id)
    # system + first question + its answer + second question; the first turn's instructions did not
    # carry over (OpenAI's rule): the model entry's system prompt applies again.
    assert second.output_text == "seen=4 | first question | second question"
    sent = echo.requests_for("recall")[-1]["messages"]
    assert sent[0] == {"role": "system", "content": SYSTEM}
    assert sent[2] == {"role": "assistant", "content": "seen=2 | first question"}
    assert second.previous_response_id == first.id

    streamed = list(alice.responses.create(model="recall", input="third", previous_response_id=second.id, stream=True))
    done = streamed[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == "seen=6 | first question | second question | third"
    assert "event" in contract.checked and "Response" in contract.checked


def test_retrieve_delete_and_input_items(keyed: SlipwayServer) -> None:
    alice = client(keyed, ALICE)
    made = alice.responses.create(
        model="recall",
        input=[
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        ],
        metadata={"case": "retrieve"},
    )
    got = alice.responses.retrieve(made.id)
    assert got.model_dump() == made.model_dump()
    assert got.metadata == {"case": "retrieve"}

    items = alice.responses.input_items.list(made.id)
    assert [(i.type, i.role) for i in items.data] == [("message", "user"), ("message", "developer")]  # newest first
    assert items.data[0].content[0].text == "hello"
    ascending = alice.responses.input_items.list(made.id, order="asc", limit=1)
    assert [i.role for i in ascending.data] == ["developer"] and ascending.has_more is True

    alice.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        alice.responses.create(model="recall", input="again", previous_response_id=made.id)


def test_another_keys_response_is_not_found(keyed: SlipwayServer) -> None:
    alice, bob = client(keyed, ALICE), client(keyed, BOB)
    made = alice.responses.create(model="recall", input="mine")
    with pytest.raises(openai.NotFoundError) as caught:
        bob.responses.retrieve(made.id)
    assert caught.value.body["param"] is None
    with pytest.raises(openai.NotFoundError) as caught:
        bob.responses.create(model="recall", input="steal", previous_response_id=made.id)
    assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.input_items.list(made.id)
    assert alice.responses.retrieve(made.id).id == made.id  # bob's delete did nothing


def test_store_false_keeps_nothing(keyed: SlipwayServer) -> None:
    alice = client(keyed, ALICE)
    made = alice.responses.create(model="recall", input="forget me", store=False)
    assert made.store is False and made.output_text == "seen=2 | forget me"
    with pytest.raises(openai.NotFoundError):
        alice.responses.retrieve(made.id)


def test_a_stream_cut_mid_answer_ends_failed_and_is_stored(keyed: SlipwayServer) -> None:
    alice = client(keyed, ALICE)
    events = list(alice.responses.create(model="cut", input="go", stream=True))
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
    assert failed.output and failed.output[0].status == "incomplete"
    assert failed.output[0].content[0].text.strip().startswith("w0")
    assert alice.responses.retrieve(failed.id).status == "failed"


def test_continues_after_a_restart_and_on_another_replica(
    databases: Databases, echo: EchoModel, tmp_path: Path
) -> None:
    url = databases.new()
    one = start_server(tmp_path, echo_models(echo), url)
    try:
        first = client(one).responses.create(model="recall", input="before the restart")
    finally:
        one.stop()
    two = start_server(tmp_path, echo_models(echo), url)
    three = start_server(tmp_path, echo_models(echo), url) if databases.backend == "postgres" else None
    try:
        second = client(two).responses.create(model="recall", input="after it", previous_response_id=first.id)
        assert second.output_text == "seen=4 | before the restart | after it"
        if three is not None:  # a second replica on the same Postgres continues what the first stored
            third = client(three).responses.create(model="recall", input="elsewhere", previous_response_id=second.id)
            assert third.output_text == "seen=6 | before the restart | after it | elsewhere"
            assert client(two).responses.retrieve(third.id).output_text == third.output_text
    finally:
        for server in (two, three):
            if server is not None:
                server.stop()
                server.tmp.cleanup()
        one.tmp.cleanup()
