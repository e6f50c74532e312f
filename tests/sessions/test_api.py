"""The native chat API on a real server (uvicorn, `python -m app`), on SQLite and on Postgres, with
the echo stand-in model so every answer shows what the model was sent."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from eval.datasets import load_dataset
from tests.servers import SlipwayServer
from tests.sessions.conftest import SYSTEM, messages, new_session, say, wait_for
from tests.sessions.standin import EchoModel

pytestmark = pytest.mark.slow


def sse_frames(url: str, session_id: str, content: str, stop_after: int | None = None) -> list[Any]:
    """POST with ?stream=true; the frames (parsed), closing the connection after `stop_after` deltas."""
    frames: list[Any] = []
    with httpx.stream(
        "POST", f"{url}/api/sessions/{session_id}/messages?stream=true", json={"content": content}, timeout=60
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            payload = line.removeprefix("data: ")
            frames.append(payload if payload == "[DONE]" else orjson.loads(payload))
            if (
                stop_after is not None
                and sum(1 for f in frames if isinstance(f, dict) and f["type"] == "delta") >= stop_after
            ):
                break
    return frames


def error_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


# -- sessions ----------------------------------------------------------------------------------------------


def test_create_read_list_delete(server: SlipwayServer) -> None:
    created = new_session(server.url, title="first", system_prompt="Be brief.", model="recall")
    assert created["object"] == "session" and created["title"] == "first" and created["model"] == "recall"
    assert created["system_prompt"] == "Be brief." and created["message_count"] == 0
    got = httpx.get(f"{server.url}/api/sessions/{created['id']}").json()
    assert got["id"] == created["id"] and got["messages"] == []

    assert httpx.post(server.url + "/api/sessions").status_code == 201, "every field is optional, the body too"
    deleted = httpx.delete(f"{server.url}/api/sessions/{created['id']}")
    assert deleted.status_code == 200 and deleted.json() == {
        "id": created["id"],
        "object": "session.deleted",
        "deleted": True,
    }
    assert httpx.get(f"{server.url}/api/sessions/{created['id']}").status_code == 404
    assert httpx.delete(f"{server.url}/api/sessions/{created['id']}").status_code == 404


def test_list_is_newest_first_and_paged(server: SlipwayServer) -> None:
    ids = [new_session(server.url, title=f"page-{i}")["id"] for i in range(5)]
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        page = httpx.get(server.url + "/api/sessions", params=params).json()
        assert page["object"] == "list" and len(page["data"]) <= 2
        seen += [s["id"] for s in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    mine = [i for i in seen if i in ids]
    assert mine == list(reversed(ids)), "newest first, each session exactly once across pages"
    assert len(seen) == len(set(seen))


def test_rename_and_change_the_system_prompt(server: SlipwayServer, echo: EchoModel) -> None:
    session = new_session(server.url, title="before", model="recall")
    sid = session["id"]
    renamed = httpx.patch(f"{server.url}/api/sessions/{sid}", json={"title": "after"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "after"
    assert renamed.json()["system_prompt"] is None, "fields left out stay as they were"
    prompt = httpx.patch(f"{server.url}/api/sessions/{sid}", json={"system_prompt": "Answer in French."})
    assert prompt.json()["title"] == "after" and prompt.json()["system_prompt"] == "Answer in French."
    assert say(server.url, sid, "bonjour").status_code == 200
    sent = echo.requests_for("recall")[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Answer in French."}, "the next turn uses the new prompt"

    for body, status in [({}, 400), ({"title": ""}, 400), ({"colour": "red"}, 400), ({"title": "x" * 201}, 400)]:
        r = httpx.patch(f"{server.url}/api/sessions/{sid}", json=body)
        assert r.status_code == status, (body, r.text)
        assert error_of(r)["message"]
    nul = httpx.patch(f"{server.url}/api/sessions/{sid}", json={"title": "a\u0000b"})
    assert nul.status_code == 400 and error_of(nul)["param"] == "title"
    missing = httpx.patch(f"{server.url}/api/sessions/{'0' * 32}", json={"title": "x"})
    assert missing.status_code == 404 and error_of(missing)["code"] == "session_not_found"
    assert httpx.get(f"{server.url}/api/sessions/{sid}").json()["title"] == "after", "refusals changed nothing"


def test_per_conversation_temperature_and_max_tokens(server: SlipwayServer, echo: EchoModel) -> None:
    """A session's sampling goes with each of its turns; null puts the model entry's default back."""
    session = new_session(server.url, model="recall", temperature=0.3)
    sid = session["id"]
    assert (session["temperature"], session["max_tokens"]) == (0.3, None)
    assert say(server.url, sid, "one").status_code == 200
    sent = echo.requests_for("recall")[-1]
    assert sent["temperature"] == 0.3 and "max_tokens" not in sent and "max_completion_tokens" not in sent

    changed = httpx.patch(f"{server.url}/api/sessions/{sid}", json={"temperature": None, "max_tokens": 7})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["temperature"], changed.json()["max_tokens"]) == (None, 7)
    assert say(server.url, sid, "two").status_code == 200
    sent = echo.requests_for("recall")[-1]
    assert "temperature" not in sent and 7 in (sent.get("max_tokens"), sent.get("max_completion_tokens")), sent

    bad = [
        ({"temperature": 2.5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**30}, "max_tokens"),
    ]
    for body, param in bad:
        r = httpx.patch(f"{server.url}/api/sessions/{sid}", json=body)
        assert r.status_code == 400 and param in (error_of(r)["param"] or ""), (body, r.text)
    for body, param in [({"temperature": -1}, "temperature"), ({"max_tokens": 2**63}, "max_tokens")]:
        r = httpx.post(server.url + "/api/sessions", json=body)  # never the database's integer overflow
        assert r.status_code == 400 and param in (error_of(r)["param"] or ""), r.text
    stored = httpx.get(f"{server.url}/api/sessions/{sid}").json()
    assert (stored["temperature"], stored["max_tokens"]) == (None, 7), "refusals changed nothing"


def test_regenerate_replaces_the_last_answer(server: SlipwayServer, echo: EchoModel) -> None:
    sid = new_session(server.url, model="recall")["id"]
    empty = httpx.post(f"{server.url}/api/sessions/{sid}/regenerate", timeout=60)
    assert empty.status_code == 400 and error_of(empty)["code"] == "nothing_to_regenerate"
    assert messages(server.url, sid) == [], "a refused regeneration stores nothing"

    assert say(server.url, sid, "first").status_code == 200
    assert say(server.url, sid, "second").status_code == 200
    before = messages(server.url, sid)
    question, old = before[-2], before[-1]

    again = httpx.post(f"{server.url}/api/sessions/{sid}/regenerate", timeout=60)
    assert again.status_code == 200, again.text
    answer = again.json()
    assert answer["id"] != old["id"] and answer["reply_to"] == question["id"] and answer["status"] == "complete"
    after = messages(server.url, sid)
    assert [m["id"] for m in after] == [m["id"] for m in before[:-1]] + [answer["id"]], "replaced in place"
    sent = echo.requests_for("recall")[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"][-1] == "second"
    assert old["content"] not in [m["content"] for m in sent], "the replaced answer is not in the history"
    assert len([m for m in sent if m["role"] == "user"]) == 2, "the question is not asked twice"

    frames = []
    with httpx.stream("POST", f"{server.url}/api/sessions/{sid}/regenerate?stream=true", timeout=60) as r:
        assert r.status_code == 200
        frames = [orjson.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]
    done = frames[-1]
    assert done["type"] == "done" and done["replaced_message_id"] == answer["id"]
    assert "".join(f["content"] for f in frames if f["type"] == "delta") == messages(server.url, sid)[-1]["content"]
    assert len(messages(server.url, sid)) == len(before)

    # An upstream outage during a regeneration costs nothing: the answer the user had stays.
    kept = messages(server.url, sid)
    echo.down = True
    try:
        failed = httpx.post(f"{server.url}/api/sessions/{sid}/regenerate", timeout=60)
    finally:
        echo.down = False
    assert failed.status_code >= 500 and error_of(failed)["message"], failed.text
    assert "X-Slipway-Message-Id" not in failed.headers, "nothing was stored"
    assert messages(server.url, sid) == kept

    missing = httpx.post(f"{server.url}/api/sessions/{'0' * 32}/regenerate", timeout=30)
    assert missing.status_code == 404 and error_of(missing)["code"] == "session_not_found"


def test_search_finds_titles_and_message_bodies(server: SlipwayServer) -> None:
    marker = "walrus" + uuid.uuid4().hex[:6]
    by_title = new_session(server.url, title=f"All about {marker.upper()}")["id"]
    by_body = new_session(server.url, title="untitled", model="recall")["id"]
    assert say(server.url, by_body, f"the {marker} sleeps on the ice").status_code == 200
    other = new_session(server.url, title="nothing here")["id"]
    found = httpx.get(server.url + "/api/sessions", params={"q": marker}).json()["data"]
    assert [s["id"] for s in found] == [by_body, by_title], "newest first, case-insensitive"
    assert other not in [s["id"] for s in found]
    # Literal text: % and _ are not wildcards.
    assert httpx.get(server.url + "/api/sessions", params={"q": "%"}).json()["data"] == []
    assert httpx.get(server.url + "/api/sessions", params={"q": ""}).status_code == 400


def test_deleting_a_session_deletes_its_messages(server: SlipwayServer) -> None:
    session = new_session(server.url)
    assert say(server.url, session["id"], "hello").status_code == 200
    assert httpx.delete(f"{server.url}/api/sessions/{session['id']}").status_code == 200
    assert say(server.url, session["id"], "again").status_code == 404


def test_bad_input_gets_openai_errors(server: SlipwayServer) -> None:
    session = new_session(server.url)
    sid = session["id"]
    unknown = say(server.url, "0" * 32, "hi")
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "session_not_found"
    empty = say(server.url, sid, "   ")
    assert empty.status_code == 400 and error_of(empty)["code"] == "empty_content"
    too_long = say(server.url, sid, "x" * 32_001)
    assert too_long.status_code == 413 and error_of(too_long)["param"] == "content"
    missing = httpx.post(f"{server.url}/api/sessions/{sid}/messages", json={})
    assert missing.status_code == 400 and error_of(missing)["param"] == "content"
    wrong_type = httpx.post(f"{server.url}/api/sessions/{sid}/messages", json={"content": 3})
    assert wrong_type.status_code == 400
    not_json = httpx.post(
        f"{server.url}/api/sessions/{sid}/messages", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and error_of(not_json)["code"] == "invalid_json"
    model = httpx.post(server.url + "/api/sessions", json={"model": "no-such-model"})
    assert model.status_code == 404 and error_of(model)["code"] == "model_not_found"
    assert httpx.get(server.url + "/api/sessions", params={"limit": 0}).status_code == 400
    assert messages(server.url, sid) == [], "nothing was stored for refused messages"


# -- turns ---------------------------------------------------------------------------------------------------


def test_each_answer_sees_the_earlier_turns(server: SlipwayServer, echo: EchoModel) -> None:
    sid = new_session(server.url)["id"]
    first = say(server.url, sid, "My name is Ada.")
    second = say(server.url, sid, "My favourite colour is teal.")
    third = say(server.url, sid, "What is my name and my favourite colour?")
    for r in (first, second, third):
        assert r.status_code == 200, r.text
    answer = third.json()
    # The stand-in can only mention Ada and teal if the earlier turns were sent to it.
    assert "Ada" in answer["content"] and "teal" in answer["content"]
    assert answer["content"].startswith("seen=6 ")
    sent = [b for b in echo.seen if b["messages"][-1]["content"] == "What is my name and my favourite colour?"][-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == SYSTEM
    assert sent["messages"][2]["content"] == first.json()["content"], "earlier answers are sent as stored"

    assert answer["role"] == "assistant" and answer["status"] == "complete" and answer["model"] == "recall"
    assert answer["usage"]["prompt_tokens"] > 0 and answer["usage"]["completion_tokens"] > 0
    assert answer["latency_ms"] >= 0 and answer["finish_reason"] == "stop"
    stored = messages(server.url, sid)
    assert [m["role"] for m in stored] == ["user", "assistant"] * 3
    assert stored[-1] == answer, "what the API returned is what was stored"
    assert stored[-1]["reply_to"] == stored[-2]["id"]


def test_session_system_prompt_replaces_the_models(server: SlipwayServer, echo: EchoModel) -> None:
    sid = new_session(server.url, system_prompt="Speak like a pirate.")["id"]
    assert say(server.url, sid, "prompt check 1").status_code == 200
    sent = [b for b in echo.seen if b["messages"][-1]["content"] == "prompt check 1"][-1]
    assert sent["messages"][0] == {"role": "system", "content": "Speak like a pirate."}


def test_streamed_answer_matches_the_stored_one(server: SlipwayServer) -> None:
    sid = new_session(server.url)["id"]
    assert say(server.url, sid, "remember: swordfish").status_code == 200
    frames = sse_frames(server.url, sid, "and now stream")
    assert frames[-1] == "[DONE]"
    deltas = [f for f in frames if isinstance(f, dict) and f["type"] == "delta"]
    done = [f for f in frames if isinstance(f, dict) and f["type"] == "done"]
    assert len(deltas) > 3 and len(done) == 1
    text = "".join(d["content"] for d in deltas)
    assert "swordfish" in text
    stored = messages(server.url, sid)[-1]
    assert stored["id"] == done[0]["message_id"] and stored["content"] == text and stored["status"] == "complete"
    assert done[0]["usage"] == stored["usage"] and done[0]["user_message_id"] == stored["reply_to"]


def test_export_round_trips_as_an_evaluation_dataset(server: SlipwayServer, tmp_path: Path) -> None:
    sid = new_session(server.url, title="to evaluate")["id"]
    answers = [say(server.url, sid, question).json() for question in ("What is 2+2?", "And 3+3?", "Thanks!")]
    r = httpx.get(f"{server.url}/api/sessions/{sid}/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    path = tmp_path / "session.jsonl"
    path.write_bytes(r.content)
    cases = load_dataset(path)  # the evaluation harness's own loader
    assert [c.reference for c in cases] == [[a["content"]] for a in answers]
    last = cases[-1]
    assert [m.role for m in last.messages or []] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last.prompt_text == "Thanks!"
    assert last.metadata["session_id"] == sid and last.metadata["message_id"] == answers[-1]["id"]
    assert last.metadata["model"] == "recall" and last.metadata["completion_tokens"] > 0
    assert httpx.get(f"{server.url}/api/sessions/{'0' * 32}/export").status_code == 404
    # The one documented command that adds a tester's conversation to a regression set, from its URL.
    import subprocess
    import sys

    from tests.servers import ROOT

    regression = tmp_path / "regression.jsonl"
    cmd = [sys.executable, "-m", "eval", "append", f"{server.url}/api/sessions/{sid}/export", "--to", str(regression)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [c.id for c in load_dataset(regression)] == [c.id for c in cases]


# -- nothing lost, nothing mixed ------------------------------------------------------------------------------


def post_at_once(url: str, session_id: str, contents: list[str]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(contents))
    results: list[httpx.Response | None] = [None] * len(contents)

    def client(index: int) -> None:
        with httpx.Client(timeout=120) as c:
            barrier.wait()
            results[index] = c.post(f"{url}/api/sessions/{session_id}/messages", json={"content": contents[index]})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(contents))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def check_serialised(stored: list[dict[str, Any]], contents: list[str], responses: list[httpx.Response]) -> None:
    """Turns one after the other: user/answer pairs in order, each answer seeing every earlier turn."""
    assert len(stored) == 2 * len(contents), "every message and every answer stored, once"
    assert [m["role"] for m in stored] == ["user", "assistant"] * len(contents)
    assert sorted(m["content"] for m in stored if m["role"] == "user") == sorted(contents)
    for k in range(len(contents)):
        user, answer = stored[2 * k], stored[2 * k + 1]
        assert answer["reply_to"] == user["id"] and answer["status"] == "complete"
        earlier = [m["content"] for m in stored[: 2 * k + 1] if m["role"] == "user"]
        assert answer["content"] == f"seen={2 * k + 2} | " + " | ".join(earlier), (k, answer["content"])
    by_id = {m["id"]: m for m in stored}
    for content, r in zip(contents, responses, strict=True):
        body = r.json()
        assert by_id[body["reply_to"]]["content"] == content, "each client got the answer to its own message"
        assert by_id[body["id"]]["content"] == body["content"]


def test_messages_posted_at_once_are_answered_one_after_the_other(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="recall-slow")["id"]
    contents = [f"concurrent message {i}" for i in range(6)]
    responses = post_at_once(server.url, sid, contents)
    assert [r.status_code for r in responses] == [200] * len(contents), [r.text for r in responses]
    check_serialised(messages(server.url, sid), contents, responses)


def test_client_leaving_mid_stream_keeps_the_partial_answer(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="slow")["id"]
    frames = sse_frames(server.url, sid, "tell me a long story", stop_after=3)
    received = "".join(f["content"] for f in frames if isinstance(f, dict) and f["type"] == "delta")

    def stored_answer() -> dict[str, Any] | None:
        found = messages(server.url, sid)
        return found[1] if len(found) == 2 else None

    answer = wait_for(stored_answer)
    user = messages(server.url, sid)[0]
    assert user["content"] == "tell me a long story" and user["status"] == "complete"
    assert answer["status"] == "incomplete" and answer["error"] == "client_disconnected"
    assert answer["content"].startswith(received) and 0 < len(answer["content"].split()) < 60
    assert answer["finish_reason"] == "cancelled"
    # Generation stopped: the model's queue is free again.
    wait_for(lambda: httpx.get(server.url + "/readyz").json()["checks"]["models"]["slow"]["queue"]["active"] == 0)


def test_client_leaving_a_plain_request_keeps_the_partial_answer(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="slow")["id"]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/api/sessions/{sid}/messages", json={"content": "long answer please"}, timeout=1.0)
    answer = wait_for(lambda: (m := messages(server.url, sid)) and len(m) == 2 and m[1])
    assert answer["status"] == "incomplete" and answer["error"] == "client_disconnected"


def test_generation_failing_mid_answer_stores_the_partial(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="cut")["id"]
    r = say(server.url, sid, "this upstream will drop")
    assert r.status_code >= 500 and error_of(r)["message"]
    stored = messages(server.url, sid)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    answer = stored[1]
    assert r.headers["x-slipway-message-id"] == str(answer["id"])
    assert answer["status"] == "incomplete" and answer["content"] == " w0 w1 w2" and answer["error"]
    frames = sse_frames(server.url, sid, "and streamed")
    errors = [f for f in frames if isinstance(f, dict) and f["type"] == "error"]
    assert (
        len(errors) == 1 and errors[0]["message_id"] == messages(server.url, sid)[-1]["id"] and frames[-1] == "[DONE]"
    )
    assert set(errors[0]["error"]) == {"message", "type", "param", "code"}


def test_a_partial_answer_stays_in_the_history(server: SlipwayServer, echo: EchoModel) -> None:
    sid = new_session(server.url, model="cut")["id"]
    assert say(server.url, sid, "doomed question").status_code >= 500
    assert say(server.url, sid, "second try").status_code >= 500
    sent = [b for b in echo.seen if b["messages"][-1]["content"] == "second try"][-1]
    assert [m["content"] for m in sent["messages"]] == ["doomed question", " w0 w1 w2", "second try"]


def test_a_turn_that_failed_before_any_text_is_left_out_of_the_history(server: SlipwayServer, echo: EchoModel) -> None:
    sid = new_session(server.url)["id"]
    failed = say(server.url, sid, "this one fails [fail]")
    assert failed.status_code >= 500
    stored = messages(server.url, sid)
    assert [(m["role"], m["status"], m["content"]) for m in stored] == [
        ("user", "complete", "this one fails [fail]"),
        ("assistant", "incomplete", ""),
    ], "the user message stays; the (empty) answer is marked incomplete"
    again = say(server.url, sid, "asking again")
    assert again.status_code == 200 and again.json()["content"] == "seen=2 | asking again"
