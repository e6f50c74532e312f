"""A mock OpenAI-compatible upstream for gateway benchmarks: as fast as a Python server gets.

A bare ASGI callable (no framework, no validation) under uvicorn with uvloop and httptools, one
process. `POST /v1/chat/completions` answers a fixed completion at once; with `"stream": true` it
sends `--chunks` SSE chunks `--pace-ms` apart, then a usage chunk and `[DONE]`. Everything the
gateways add is measured against this same server, and the load generator is checked against it.

    python -m bench.mock_upstream --port 9100 [--chunks 20] [--pace-ms 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

ANSWER = "The capital of France is Paris."
USAGE = {"prompt_tokens": 14, "completion_tokens": 8, "total_tokens": 22}


def completion(model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
            ],
            "usage": USAGE,
        }
    ).encode()


def chunk(model: str, delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class Mock:
    def __init__(self, chunks: int, pace_s: float) -> None:
        self.chunks = chunks
        self.pace_s = pace_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"].endswith("/models"):
            data = json.dumps({"object": "list", "data": [{"id": "mock", "object": "model"}]}).encode()
            await _respond(send, 200, b"application/json", data)
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            await _respond(send, 400, b"application/json", b'{"error": {"message": "bad json"}}')
            return
        model = str(request.get("model", "mock"))
        if not request.get("stream"):
            await _respond(send, 200, b"application/json", completion(model))
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
            }
        )
        words = ANSWER.split(" ")
        await send({"type": "http.response.body", "body": chunk(model, {"role": "assistant", "content": ""}), "more_body": True})
        for i in range(self.chunks):
            if self.pace_s:
                await asyncio.sleep(self.pace_s)
            text = ("" if i == 0 else " ") + words[i % len(words)]
            await send({"type": "http.response.body", "body": chunk(model, {"content": text}), "more_body": True})
        tail = chunk(model, {}, "stop")
        if (request.get("stream_options") or {}).get("include_usage"):
            tail += chunk(model, {}, usage=USAGE)
        await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False})


async def _respond(send: Any, status: int, content_type: bytes, data: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--pace-ms", type=float, default=1.0)
    args = parser.parse_args()
    uvicorn.run(
        Mock(args.chunks, args.pace_ms / 1000),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
