"""Turns over a WebSocket: a real client (`websockets`) against a real server, on both databases."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.servers import SlipwayServer
from tests.sessions.conftest import messages, new_session, wait_for

pytestmark = pytest.mark.slow


def ws_url(server: SlipwayServer, session_id: str) -> str:
    return server.url.replace("http://", "ws://") + f"/api/sessions/{session_id}/ws"


def send(ws: ClientConnection, frame: dict[str, Any] | str) -> None:
    ws.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())


def recv(ws: ClientConnection) -> dict[str, Any]:
    return orjson.loads(ws.recv(timeout=60))


def answer(ws: ClientConnection) -> tuple[str, dict[str, Any]]:
    """Read one answer: its deltas joined, and the closing frame (`done` or `error`)."""
    parts = []
    while True:
        frame = recv(ws)
        if frame["type"] == "delta":
            parts.append(frame["content"])
        else:
            return "".join(parts), frame


def test_many_turns_on_one_socket_each_seeing_the_earlier_ones(server: SlipwayServer) -> None:
    sid = new_session(server.url)["id"]
    with connect(ws_url(server, sid)) as ws:
        texts = []
        for content in ("The password is heron.", "The door is blue.", "What did I tell you?"):
            send(ws, {"type": "message", "content": content})
            text, done = answer(ws)
            assert done["type"] == "done" and done["status"] == "complete", done
            texts.append((text, done))
    last_text, last_done = texts[-1]
    assert "heron" in last_text and "blue" in last_text and last_text.startswith("seen=6 ")
    stored = messages(server.url, sid)
    assert [m["role"] for m in stored] == ["user", "assistant"] * 3
    assert stored[-1]["id"] == last_done["message_id"] and stored[-1]["content"] == last_text
    assert last_done["usage"] == stored[-1]["usage"] and last_done["usage"]["completion_tokens"] > 0
    assert last_done["user_message_id"] == stored[-2]["id"] and last_done["model"] == "recall"


def test_recoverable_errors_keep_the_socket_open(server: SlipwayServer) -> None:
    sid = new_session(server.url)["id"]
    with connect(ws_url(server, sid)) as ws:
        bad: list[tuple[Any, str]] = [
            ("{not json", "invalid_json"),
            ({"type": "message", "content": ""}, "empty_content"),
            ({"type": "message", "content": "  \n"}, "empty_content"),
            ({"type": "message", "content": 5}, "invalid_value"),
            ({"type": "message", "content": "x" * 32_001}, "content_too_long"),
            ({"type": "shout", "content": "hi"}, "unknown_type"),
            ([1, 2], "unknown_type"),
        ]
        for frame, code in bad:
            send(ws, frame)
            error = recv(ws)
            assert error["type"] == "error" and error["code"] == code, (frame, error)
            assert error["message"] and set(error["error"]) == {"message", "type", "param", "code"}
        ws.send(b"\xff\xfe")  # a binary frame that is not even UTF-8
        assert recv(ws)["code"] == "invalid_json"
        send(ws, {"type": "message", "content": "still here?"})
        text, done = answer(ws)
        assert done["type"] == "done" and text == "seen=2 | still here?"
    assert len(messages(server.url, sid)) == 2, "refused frames stored nothing"


def test_regenerate_frame_answers_the_last_question_again(server: SlipwayServer) -> None:
    sid = new_session(server.url)["id"]
    with connect(ws_url(server, sid)) as ws:
        send(ws, {"type": "regenerate"})
        assert recv(ws)["code"] == "nothing_to_regenerate", "nothing to regenerate yet; the socket stays open"
        send(ws, {"type": "message", "content": "The door is blue."})
        first, done = answer(ws)
        send(ws, {"type": "regenerate"})
        again, regenerated = answer(ws)
    assert regenerated["type"] == "done" and regenerated["replaced_message_id"] == done["message_id"]
    assert regenerated["user_message_id"] == done["user_message_id"]
    assert again == first == "seen=2 | The door is blue.", "the same history as the first answer saw"
    stored = messages(server.url, sid)
    assert [m["id"] for m in stored] == [done["user_message_id"], regenerated["message_id"]]


def test_cancel_stops_generation_and_stores_the_partial(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="slow")["id"]
    with connect(ws_url(server, sid)) as ws:
        send(ws, {"type": "message", "content": "a long one"})
        received = [recv(ws) for _ in range(3)]
        assert all(f["type"] == "delta" for f in received)
        send(ws, {"type": "cancel"})
        text, done = answer(ws)
        assert done["type"] == "done" and done["status"] == "incomplete" and done["finish_reason"] == "cancelled"
        partial = "".join(f["content"] for f in received) + text
        # The socket stays usable: the next turn runs (and is cancelled in turn).
        send(ws, {"type": "message", "content": "another"})
        assert recv(ws)["type"] == "delta"
        send(ws, {"type": "cancel"})
        _, second = answer(ws)
        assert second["status"] == "incomplete"
    stored = messages(server.url, sid)
    assert [m["role"] for m in stored] == ["user", "assistant"] * 2
    assert stored[1]["id"] == done["message_id"] and stored[1]["content"] == partial
    assert stored[1]["status"] == "incomplete" and stored[1]["error"] == "cancelled"
    assert 0 < len(partial.split()) < 60


def test_closing_the_socket_mid_answer_stores_the_partial(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="slow")["id"]
    with connect(ws_url(server, sid)) as ws:
        send(ws, {"type": "message", "content": "talk until I leave"})
        received = "".join(recv(ws)["content"] for _ in range(3))
    answer_row = wait_for(lambda: (m := messages(server.url, sid)) and len(m) == 2 and m[1])
    assert answer_row["status"] == "incomplete" and answer_row["error"] == "client_disconnected"
    assert answer_row["content"].startswith(received) and len(answer_row["content"].split()) < 60
    wait_for(lambda: httpx.get(server.url + "/readyz").json()["checks"]["models"]["slow"]["queue"]["active"] == 0)


def test_messages_sent_back_to_back_are_answered_in_order(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="recall-slow")["id"]
    contents = ["one", "two", "three"]
    with connect(ws_url(server, sid)) as ws:
        for content in contents:
            send(ws, {"type": "message", "content": content})
        answers = [answer(ws) for _ in contents]
    for k, (text, done) in enumerate(answers):
        assert done["type"] == "done"
        assert text == f"seen={2 * k + 2} | " + " | ".join(contents[: k + 1])


def test_sockets_of_several_clients_are_serialised(server: SlipwayServer) -> None:
    sid = new_session(server.url, model="recall-slow")["id"]
    contents = [f"socket {i}" for i in range(4)]
    barrier = threading.Barrier(len(contents))
    results: dict[str, str] = {}

    def client(content: str) -> None:
        with connect(ws_url(server, sid)) as ws:
            barrier.wait()
            send(ws, {"type": "message", "content": content})
            results[content] = answer(ws)[0]

    threads = [threading.Thread(target=client, args=(c,)) for c in contents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = messages(server.url, sid)
    assert [m["role"] for m in stored] == ["user", "assistant"] * len(contents)
    for k in range(len(contents)):
        user, reply = stored[2 * k], stored[2 * k + 1]
        earlier = [m["content"] for m in stored[: 2 * k + 1] if m["role"] == "user"]
        assert reply["content"] == f"seen={2 * k + 2} | " + " | ".join(earlier)
        assert results[user["content"]] == reply["content"], "each socket got the answer to its own message"


def test_unknown_session_gets_an_error_frame_and_close_4404(server: SlipwayServer) -> None:
    with connect(ws_url(server, "f" * 32)) as ws:
        error = recv(ws)
        assert error["type"] == "error" and error["code"] == "session_not_found"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
