"""Headless Debian Chromium through Playwright (Playwright's own browser download fails offline)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # Shared memory in /tmp, not /dev/shm: a container's /dev/shm is 64 MB by default, and a renderer
    # that runs out of it dies mid-navigation ("Target page, context or browser has been closed", seen
    # once in CI on the comparison report).
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian chromium is not installed: run scripts/bootstrap.sh dev (it apt-installs chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="slipway-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield context
        finally:
            context.close()
