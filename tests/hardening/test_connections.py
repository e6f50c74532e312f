"""What one connection can cost, tried over raw sockets against a real server: oversized headers,
slowloris headers, a stalled body, too many connections from one address. Each refusal is bounded in
time by the configured limit (deadlines here, never timings asserted), the service answers normally
afterwards, and its memory is printed before and after."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow

LIMITS = {
    "SLIPWAY_MAX_HEADER_BYTES": "16384",
    "SLIPWAY_HEADER_TIMEOUT_S": "2",
    "SLIPWAY_BODY_TIMEOUT_S": "2",
    "SLIPWAY_MAX_CONNECTIONS_PER_CLIENT": "6",
}


@pytest.fixture(scope="module")
def server() -> Iterator[SlipwayServer]:
    with SlipwayServer(env=LIMITS) as s:
        yield s


def rss_mib(server: SlipwayServer) -> float:
    assert server.proc is not None
    return psutil.Process(server.proc.pid).memory_info().rss / 2**20


def read_all(sock: socket.socket, deadline_s: float = 30) -> bytes:
    sock.settimeout(deadline_s)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return out
        if not chunk:
            return out
        out += chunk


def healthy(server: SlipwayServer) -> bool:
    return httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_oversized_headers_get_431_without_being_parsed_whole(server: SlipwayServer) -> None:
    before = rss_mib(server)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        try:
            for _ in range(64):  # up to 64 MiB, stopped by the server long before
                sock.sendall(b"a" * 1024 * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"headers_too_large" in answer
    assert healthy(server)
    print(f"\nRSS {before:.1f} -> {rss_mib(server):.1f} MiB around a 64 MiB header")


def test_too_many_header_fields_get_431(server: SlipwayServer) -> None:
    before = rss_mib(server)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        fields = b"".join(b"X-%d: y\r\n" % i for i in range(150))  # small, but 150 of them
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert healthy(server)
    print(f"\nRSS {before:.1f} -> {rss_mib(server):.1f} MiB around 150 header fields")


def test_slowloris_headers_are_cut_after_the_header_timeout(server: SlipwayServer) -> None:
    before = rss_mib(server)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.5)
        while time.monotonic() - started < 30:
            try:
                sock.sendall(b"X: y\r\n")  # one header line every half second, never the end
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert healthy(server)
    print(f"\nRSS {before:.1f} -> {rss_mib(server):.1f} MiB around a slowloris connection")


def test_a_connection_that_sends_nothing_is_closed(server: SlipwayServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert read_all(sock) == b""  # closed by the server (within the 30 s deadline)


def test_a_stalled_body_is_cut_after_the_body_timeout(server: SlipwayServer) -> None:
    before = rss_mib(server)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: 1000\r\n\r\n{\"messages\": "
        )
        answer = read_all(sock)  # nothing more is sent: the server gives up within the deadline
    assert b" 200 " not in answer[:20]
    assert healthy(server)
    print(f"\nRSS {before:.1f} -> {rss_mib(server):.1f} MiB around a stalled body")


def test_connections_per_address_are_capped(server: SlipwayServer) -> None:
    before = rss_mib(server)
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(6)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # open, headers unfinished
        time.sleep(0.2)  # let the server register them (a seventh must then be refused)
        with socket.create_connection(("127.0.0.1", server.port)) as extra:
            answer = read_all(extra, 10)
        assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer, answer[:200]
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 30
    while not healthy(server):  # the slots come back once those connections are gone
        assert time.monotonic() < deadline
        time.sleep(0.1)
    print(f"\nRSS {before:.1f} -> {rss_mib(server):.1f} MiB around seven connections")
