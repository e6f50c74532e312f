"""Limits on what one connection can cost before the app sees a request: uvicorn's HTTP protocol
(httptools) with a header size limit, header and body read timeouts, and a cap on connections per
client address.

Why here: uvicorn with httptools parses a 64 MiB header (seconds with the event loop stalled), keeps a
connection that sends one byte every two seconds forever, and reads a body as slowly as a client
likes; nothing in the app can see a request before its headers are complete. These matter whenever
the service listens without a proxy in front; behind one they are the last line of defence (and the
per-address cap then counts the proxy: keep it above the proxy's connection pool).

- headers (request line + header fields) over `max_header_bytes`, or more than `max_header_count`
  fields: 431, connection closed;
- headers not complete `header_timeout_s` after a request's first byte: 408, closed; a new
  connection that sends nothing at all for that long is closed silently;
- a body that stops arriving for `body_timeout_s`: the connection is closed (the app sees a
  disconnect, as when a client leaves);
- more than `max_connections_per_client` open connections from one address: the newest gets 503
  and is closed. WebSockets leave the count when they upgrade (their frames are bounded elsewhere).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections_per_client: int = 256


def _response(status: int, reason: str, message: str, code: str) -> bytes:
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    open_by_client: ClassVar[Counter[str]] = Counter()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else ""
        self._counted = True
        self._header_bytes = 0
        self._in_head = True  # the bytes arriving belong to a request line or headers
        self._too_large = False
        self._timer: asyncio.TimerHandle | None = None
        self.open_by_client[self._peer] += 1
        if self.open_by_client[self._peer] > self.limits.max_connections_per_client:
            self._refuse(
                _response(
                    503,
                    "Service Unavailable",
                    f"Too many connections from your address (at most {self.limits.max_connections_per_client}).",
                    "too_many_connections",
                )
            )
            return
        self._arm(self.limits.header_timeout_s, self._idle_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._leave()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._leave()
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        """Count a request's head as it arrives: httptools holds a header value until its line ends,
        so a 64 MiB value would be buffered whole before any callback could see its size."""
        if self._in_head:
            end = data.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else end
            if self._header_bytes > self.limits.max_header_bytes:
                self._too_large = True
                self.send_400_response("")
                return
        super().data_received(data)

    # -- parser callbacks ----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.limits.header_timeout_s, self._headers_expired)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > self.limits.max_header_count:
            self._too_large = True
            raise ValueError("too many header fields")  # httptools stops; uvicorn calls send_400_response

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_head = False
        self._header_bytes = 0
        super().on_headers_complete()
        if not self.transport.is_closing() and self.parser is not None:
            self._arm(self.limits.body_timeout_s, self._body_expired)

    def on_body(self, body: bytes) -> None:
        self._arm(self.limits.body_timeout_s, self._body_expired)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True  # what comes next on this connection is the next request's head
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse(
                _response(
                    431,
                    "Request Header Fields Too Large",
                    f"The request's headers are over {self.limits.max_header_bytes} bytes or "
                    f"{self.limits.max_header_count} fields.",
                    "headers_too_large",
                )
            )
            return
        super().send_400_response(msg)

    # -- helpers ---------------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if getattr(self, "_timer", None) is not None:
            self._timer.cancel()  # type: ignore[union-attr]
            self._timer = None

    def _leave(self) -> None:
        self._disarm()
        if getattr(self, "_counted", False):
            self._counted = False
            self.open_by_client[self._peer] -= 1
            if self.open_by_client[self._peer] <= 0:
                del self.open_by_client[self._peer]

    def _refuse(self, response: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _idle_expired(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _headers_expired(self) -> None:
        self._timer = None
        self._refuse(
            _response(
                408,
                "Request Timeout",
                f"The request's headers did not arrive within {self.limits.header_timeout_s:g} s.",
                "request_timeout",
            )
        )

    def _body_expired(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for `uvicorn.run(http=...)`, with these limits."""
    return type("SlipwayHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits, "open_by_client": Counter()})
