"""Shared fixtures. `server`: one real Slipway (uvicorn + the packaged model) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import SlipwayServer


@pytest.fixture(scope="session")
def server() -> Iterator[SlipwayServer]:
    """The default service as README's first command starts it (packaged model, SQLite, no auth)."""
    with SlipwayServer() as s:
        yield s
