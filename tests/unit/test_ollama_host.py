"""`OLLAMA_HOST` and `base_url` read as the ollama client reads them: its own parser is the oracle."""

from __future__ import annotations

import pytest
from ollama._client import _parse_host

from app.providers.ollama_wire import server_url

HOSTS = [
    "1.2.3.4",
    ":56789",
    "1.2.3.4:56789",
    "http://1.2.3.4",
    "https://1.2.3.4",
    "https://1.2.3.4:56789",
    "example.com",
    "example.com:56789",
    "http://example.com",
    "https://example.com:56789",
    "example.com/",
    "example.com/path",
    "example.com:56789/path/",
    "http://localhost:11434",
    "127.0.0.1:11434",
    "[0001:002:003:0004::1]",
    "[0001:002:003:0004::1]:56789",
    "http://[0001:002:003:0004::1]",
]


@pytest.mark.parametrize("host", HOSTS)
def test_same_url_as_the_ollama_client(host: str) -> None:
    assert server_url(host) == _parse_host(host)
