"""A loopback stand-in for an OpenAI-compatible model that shows what it was sent.

The packaged model is too small to prove that a conversation's history reaches it, so these tests
point a models-file entry (`provider: openai`) at this server, which Slipway reaches through its real
openai provider (LangChain's `ChatOpenAI` over HTTP). Every request is recorded (`seen`), and the
answer is computed from the messages received, so an answer that mentions an earlier turn proves the
earlier turn was sent. The upstream model name picks the behaviour:

    recall[-<ms>]      "seen=<n> | <every user message, in order, joined by ' | '>", one word per chunk;
                       HTTP 500 before any text when the last message contains "[fail]" (any model:
                       while `down` is set)
    slow-<ms>          60 words, one every <ms> milliseconds (a long answer a client can walk out of)
    cut-<k>            k words, then the connection drops (a generation that fails mid-stream)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.protocol_drift import drift_route, openai_shape
from tests.servers import free_port


class CutConnection(Exception):
    """Raised inside a streaming body: uvicorn drops the connection mid-response."""


def recall_text(messages: list[dict[str, Any]]) -> str:
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    return f"seen={len(messages)} | " + " | ".join(users)


def plan(model: str, messages: list[dict[str, Any]]) -> tuple[list[str], float, int | None]:
    """(chunks, delay_s, cut_after) for an upstream model name."""
    kind, _, arg = model.partition("-")
    if kind == "recall":
        words = recall_text(messages).split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)], int(arg or 0) / 1000, None
    if kind == "slow":
        return [f" w{i}" for i in range(60)], int(arg) / 1000, None
    if kind == "cut":
        return [f" w{i}" for i in range(int(arg) + 5)], 0.0, int(arg)
    return ["unknown", " model"], 0.0, None


@dataclass
class EchoModel:
    port: int = field(default_factory=free_port)
    seen: list[dict[str, Any]] = field(default_factory=list)
    #: Set by a test: every request gets HTTP 500 before any text (an upstream outage).
    down: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def entry(self, name: str, script: str, **extra: Any) -> dict[str, Any]:
        """A models-file entry served by this stand-in."""
        return {"name": name, "provider": "openai", "base_url": self.url, "model": script, **extra}

    def requests_for(self, script: str) -> list[dict[str, Any]]:
        return [body for body in self.seen if body.get("model") == script]

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.seen.append(body)
        messages = body.get("messages", [])
        if self.down or (messages and "[fail]" in str(messages[-1].get("content", ""))):
            return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}}, status_code=500)
        chunks, delay, cut = plan(body.get("model", ""), messages)
        created = int(time.time())
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)

        def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> bytes:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
            payload = {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": created}
            payload |= {"model": body.get("model"), "choices": choices}
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        async def events() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            for index, piece in enumerate(chunks):
                if cut is not None and index == cut:
                    raise CutConnection
                if delay:
                    await asyncio.sleep(delay)
                yield chunk({"content": piece})
            yield chunk({}, "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                last = json.loads(chunk(None)[6:])
                last["usage"] = {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(chunks),
                    "total_tokens": prompt_tokens + len(chunks),
                }
                yield b"data: " + json.dumps(last).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        if body.get("stream"):
            return StreamingResponse(events(), media_type="text/event-stream")
        text = "".join(chunks)
        return JSONResponse(
            {
                "id": "chatcmpl-echo",
                "object": "chat.completion",
                "created": created,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(chunks), "total_tokens": 0},
            }
        )

    def start(self) -> EchoModel:
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.completions, methods=["POST"]),
                drift_route("OpenAI-compatible (echo)", "POST /v1/chat/completions", openai_shape),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="echo-model", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("echo model did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> EchoModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
