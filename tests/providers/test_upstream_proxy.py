"""The wire clients honour HTTP_PROXY and NO_PROXY, read once per upstream URL rather than on every
request (`app.providers.upstream_http`): two real servers on loopback, an upstream and a forward
proxy, each recording the request line it received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.providers.upstream_http import UpstreamClient

pytestmark = pytest.mark.asyncio

ANSWER = b'data: {"ok": true}\n\ndata: [DONE]\n\n'


class Recorder:
    """A minimal HTTP/1.1 server answering every request with an SSE body; keeps the request lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
            if not head:
                break
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            self.lines.append(request_line)
            length = next((int(h.split(":", 1)[1]) for h in header_lines if h.lower().startswith("content-length:")), 0)
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
                + ANSWER
            )
            await writer.drain()
        writer.close()

    async def __aenter__(self) -> Recorder:
        self._server = await asyncio.start_server(self._safe, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _safe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


async def _lines(client: UpstreamClient, url: str) -> list[bytes]:
    def error(status: int, raw: bytes) -> Exception:
        return RuntimeError(status)

    stream: AsyncIterator[list[bytes]] = client.lines(url, b"{}", {"Content-Type": "application/json"}, error)
    return [line async for batch in stream for line in batch]


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_requests_go_through_the_environments_proxy(no_proxy_env: pytest.MonkeyPatch) -> None:
    async with Recorder() as upstream, Recorder() as proxy:
        no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        client = UpstreamClient(read_timeout_s=5, connect_timeout_s=5)
        url = f"http://127.0.0.1:{upstream.port}/v1/chat/completions"
        try:
            for _ in range(3):
                assert await _lines(client, url) == [b'data: {"ok": true}', b"", b"data: [DONE]", b""]
        finally:
            await client.aclose()
        # A forward proxy receives the absolute URL; the upstream itself received nothing.
        assert proxy.lines == [f"POST {url} HTTP/1.1"] * 3
        assert upstream.lines == []


async def test_no_proxy_sends_requests_directly(no_proxy_env: pytest.MonkeyPatch) -> None:
    async with Recorder() as upstream, Recorder() as proxy:
        no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        client = UpstreamClient(read_timeout_s=5, connect_timeout_s=5)
        try:
            await _lines(client, f"http://127.0.0.1:{upstream.port}/v1/chat/completions")
        finally:
            await client.aclose()
        assert upstream.lines == ["POST /v1/chat/completions HTTP/1.1"]
        assert proxy.lines == []


async def test_without_a_proxy_requests_go_directly(no_proxy_env: pytest.MonkeyPatch) -> None:
    async with Recorder() as upstream:
        client = UpstreamClient(read_timeout_s=5, connect_timeout_s=5)
        try:
            await _lines(client, f"http://127.0.0.1:{upstream.port}/v1/chat/completions")
        finally:
            await client.aclose()
        assert upstream.lines == ["POST /v1/chat/completions HTTP/1.1"]
