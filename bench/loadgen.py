"""A load generator that is not the bottleneck: raw HTTP/1.1 over asyncio (uvloop), keep-alive, one
connection per concurrent client, no HTTP library in the way. Run in its own process so it never
shares a core's event loop with what it measures.

For each request it records the latency (send to last byte) and, for streams, the time to the first
chunk that carries text (`"content": "<something>"`), the moment a user sees the answer start, and
with `--gaps` the time between consecutive text chunks (a stalled stream shows as a long gap).

    python -m bench.loadgen --url http://127.0.0.1:9100/v1/chat/completions --concurrency 16 \
        --requests 2000 --warmup 200 [--stream] [--gaps] [--key KEY] [--header NAME:VALUE ...] [--out FILE]
        -> one JSON object on stdout (or in FILE)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

FIRST_TEXT = re.compile(rb'"content":\s*"[^"]')


@dataclass
class Results:
    latencies_ms: list[float] = field(default_factory=list)
    ttfc_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    gaps_ms: list[float] | None = None


def request_bytes(url: str, model: str, stream: bool, key: str | None, extra_headers: list[str] | None = None) -> bytes:
    parts = urlsplit(url)
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 32,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    data = json.dumps(body).encode()
    headers = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        "Accept: application/json" if not stream else "Accept: text/event-stream",
        f"Content-Length: {len(data)}",
    ]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    headers += extra_headers or []
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + data


async def read_response(
    reader: asyncio.StreamReader, started: float, gaps: list[float] | None = None
) -> tuple[int, float | None, bool]:
    """(status, seconds to the first text chunk or None, keep-alive) after reading the whole body;
    `gaps` gets the milliseconds between consecutive chunks that carry text."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
    keep_alive = headers.get(b"connection") != b"close"
    first_text = None
    last_text = 0.0
    if headers.get(b"transfer-encoding") == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            data = await reader.readexactly(size + 2)
            if gaps is not None or first_text is None:
                if FIRST_TEXT.search(data):
                    now = time.perf_counter() - started
                    if first_text is None:
                        first_text = now
                    elif gaps is not None:
                        gaps.append((now - last_text) * 1000)
                    last_text = now
    elif b"content-length" in headers:
        data = await reader.readexactly(int(headers[b"content-length"]))
        if FIRST_TEXT.search(data):
            first_text = time.perf_counter() - started
    else:
        await reader.read()
        keep_alive = False
    return status, first_text, keep_alive


async def client(host: str, port: int, payload: bytes, plan: list[bool], results: Results) -> None:
    """One connection, taking requests from `plan` (True = measured, False = warm-up) until empty."""
    reader = writer = None
    while plan:
        measured = plan.pop()
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port)
        assert reader is not None
        started = time.perf_counter()
        try:
            writer.write(payload)
            status, first_text, keep_alive = await read_response(reader, started, results.gaps_ms if measured else None)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            results.errors += measured
            writer.close()
            reader = writer = None
            continue
        elapsed = time.perf_counter() - started
        if measured:
            results.statuses[status] = results.statuses.get(status, 0) + 1
            if status == 200:
                results.latencies_ms.append(elapsed * 1000)
                if first_text is not None:
                    results.ttfc_ms.append(first_text * 1000)
        if not keep_alive:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def run(
    url: str,
    model: str,
    concurrency: int,
    requests: int,
    warmup: int,
    stream: bool,
    key: str | None,
    gaps: bool = False,
    headers: list[str] | None = None,
) -> dict:
    parts = urlsplit(url)
    payload = request_bytes(url, model, stream, key, headers)
    results = Results(gaps_ms=[] if gaps else None)
    warm: list[bool] = [False] * warmup
    await asyncio.gather(
        *(client(parts.hostname or "", parts.port or 80, payload, warm, results) for _ in range(concurrency))
    )
    plan: list[bool] = [True] * requests
    started = time.perf_counter()
    await asyncio.gather(
        *(client(parts.hostname or "", parts.port or 80, payload, plan, results) for _ in range(concurrency))
    )
    duration = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": requests,
        "stream": stream,
        "duration_s": duration,
        "rps": len(results.latencies_ms) / duration if duration else 0.0,
        "latencies_ms": results.latencies_ms,
        "ttfc_ms": results.ttfc_ms,
        "statuses": results.statuses,
        "errors": results.errors,
        **({"gaps_ms": results.gaps_ms} if results.gaps_ms is not None else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="bench")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--key")
    parser.add_argument("--gaps", action="store_true", help="Record the gaps between text chunks.")
    parser.add_argument("--header", action="append", default=[], help="An extra request header, NAME:VALUE.")
    parser.add_argument("--out", help="Write the JSON object to this file instead of stdout.")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    out = asyncio.run(
        run(
            args.url,
            args.model,
            args.concurrency,
            args.requests,
            args.warmup,
            args.stream,
            args.key,
            args.gaps,
            args.header,
        )
    )
    if args.out:  # a file: a large result once arrived cut short through the pipe (reason not found)
        with open(args.out, "w") as f:
            json.dump(out, f)
    else:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
