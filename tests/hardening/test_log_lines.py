"""Log lines stay valid JSON whatever a client sends, carry no key in any field, and leave the
service's own words alone. (Every `SlipwayServer` in the suite also checks its whole log when it
stops: see `tests.servers.log_problems`.)"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.servers import SlipwayServer, log_problems

pytestmark = pytest.mark.slow

KEY = "sk-slw-LogLinesTestKey0123456789abcdefghij"


def test_hostile_requests_leave_valid_json_and_no_key() -> None:
    with SlipwayServer(env={"SLIPWAY_API_KEYS": KEY}) as server:
        # A WebSocket URL with ?token=: uvicorn logs the request line, which the scrubber used to break.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(
                b"GET /api/sessions/x/ws?token=abc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            raw.recv(200)
        # A key pasted as a request id is not echoed, nor logged.
        r = httpx.get(server.url + "/v1/models", headers={"authorization": f"Bearer {KEY}", "x-request-id": KEY})
        assert r.status_code == 200 and r.headers["x-request-id"] != KEY
        assert httpx.get(server.url + "/v1/models", headers={"x-request-id": "my-trace-42"}).headers[
            "x-request-id"
        ] == "my-trace-42"
        # The service's own help text is not scrubbed into nonsense.
        missing = httpx.get(server.url + "/v1/models").json()["error"]["message"]
        assert "`Authorization: Bearer <key>`" in missing
        log = server.log_text()
    assert KEY not in log
    assert log_problems(log, [KEY]) == []
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any("token=***" in str(line.get("event", "")) for line in lines), "the ws line is there, scrubbed"
