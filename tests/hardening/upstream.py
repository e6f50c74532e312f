"""A scripted OpenAI-compatible upstream on loopback, run as its own process so a test can kill it.

    python -m tests.hardening.upstream PORT

The upstream model name says what to answer: `words-<n>-<ms>` streams n words, one every <ms>
milliseconds (non-streaming: the same words in one body after the same total time). No model runs:
answers are instant and cheap, so the service's own costs dominate what tests measure, and a slow
script makes a long stream whose end a test controls (by killing this process).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.protocol_drift import drift_route, openai_shape


def script(model: str) -> tuple[int, float]:
    parts = model.split("-")
    if len(parts) == 3 and parts[0] == "words":
        return int(parts[1]), int(parts[2]) / 1000
    return 3, 0.0


async def completions(request: Request) -> Response:
    body = await request.json()
    model = body.get("model", "words-3-0")
    count, delay = script(model)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        count = min(count, int(limit))
    created = int(time.time())
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))

    def chunk(delta: dict | None, finish: str | None = None) -> bytes:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        payload = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": created, "model": model}
        return b"data: " + json.dumps({**payload, "choices": choices}).encode() + b"\n\n"

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        for i in range(count):
            if delay:
                await asyncio.sleep(delay)
            yield chunk({"content": f" w{i}"})
        yield chunk({}, "length" if limit and count == limit else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            last = json.loads(chunk(None)[6:])
            last["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": count,
                "total_tokens": prompt_tokens + count,
            }
            yield b"data: " + json.dumps(last).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    if body.get("stream"):
        return StreamingResponse(events(), media_type="text/event-stream")
    await asyncio.sleep(delay * count)
    return JSONResponse(
        {
            "id": "chatcmpl-up",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(f" w{i}" for i in range(count))},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": count,
                "total_tokens": prompt_tokens + count,
            },
        }
    )


# Its own process: a drift line reaches the test as this 501's message (Slipway's error names it).
app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        drift_route("OpenAI-compatible (scripted)", "POST /v1/chat/completions", openai_shape),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
