"""The wire clients' HTTP: one pooled aiohttp session per upstream, a POST whose answer is read line by
line (SSE or NDJSON).

Why aiohttp rather than httpx: `python -m bench.http_clients` reads the same 20-chunk stream from the
bench's mock through each client in one process; aiohttp carried 2.9x httpx's streams per second at
one stream and 8.2x at 16 (httpx2, the line the SDKs moved to: 1.1x and 2.1x). LiteLLM measured the
same move (BerriAI/litellm#11097). aiohttp is maintained, does TLS, keep-alive and timeouts, and
closes the connection when a stream is left unread (a client gone), which stops generation on
servers that notice.

Lines are split here rather than by aiohttp's `readline`, which refuses lines over its buffer limit: a
data line carrying a long tool call or a schema-bound JSON answer must pass whatever its size.

Proxies: HTTP(S)_PROXY, ALL_PROXY and NO_PROXY apply, as they did with httpx, read once per upstream URL
when it is first used. aiohttp's own `trust_env=True` reads them (and ~/.netrc) again on every request,
each read in a thread of the default executor: two thread hops per request, about 340 us of CPU and the
largest single cost the gateway's profile showed after the framework (issue #18). ~/.netrc is not read:
httpx stopped reading it by default in 0.24, and an upstream's key belongs in the models file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

#: What a request to an upstream URL goes through: (proxy, its credentials), or (None, None) direct.
Route = tuple[URL | None, aiohttp.BasicAuth | None]


def env_route(url: URL) -> Route:
    """The proxy the environment names for `url` (NO_PROXY honoured), as aiohttp's `trust_env` finds it."""
    try:
        return get_env_proxy_for_url(url)
    except LookupError:
        return None, None


class UpstreamClient:
    """Created cheaply; the session opens on first use, inside the event loop that uses it."""

    def __init__(self, *, read_timeout_s: float, connect_timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._routes: dict[str, tuple[URL, Route]] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    def _route(self, url: str) -> tuple[URL, Route]:
        """The URL parsed once, and its proxy from the environment, looked up once."""
        found = self._routes.get(url)
        if found is None:
            parsed = URL(url)
            found = self._routes[url] = (parsed, env_route(parsed))
        return found

    async def lines(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        error: Callable[[int, bytes], Exception],
    ) -> AsyncIterator[list[bytes]]:
        """POST `body`; the answer's lines (without their line ends) as each read from the network
        completes them, a list per read, or `error(status, body)` raised for an error status.

        A list per read rather than a line at a time: a generator hands over each item with a frame
        switch, and an answer that arrives at once (a short one, or a non-streamed upstream's) is
        dozens of lines in one or two reads."""
        target, (proxy, proxy_auth) = self._route(url)
        async with self.session.post(target, data=body, headers=headers, proxy=proxy, proxy_auth=proxy_auth) as r:
            if r.status >= 400:
                raise error(r.status, await r.read())
            rest = b""
            async for chunk in r.content.iter_any():
                rest += chunk
                if b"\n" not in chunk:
                    continue
                *complete, rest = rest.split(b"\n")
                yield [line.rstrip(b"\r") for line in complete]
            if rest:
                yield [rest.rstrip(b"\r")]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
