"""Fixtures for the deployment checks: broken copies of the repository's files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.tools import ROOT


@pytest.fixture
def broken_copy(tmp_path: Path) -> Callable[..., Path]:
    """Copy repo files into tmp_path (same relative layout) and break one with a text replacement.

    `broken_copy("docker-compose.yml", "old", "new", also=["infra/compose/models.yaml"])` returns the
    copy's path; `old` must occur, so a test can never pass because its defect was not injected.
    """

    def make(relpath: str, old: str, new: str, also: tuple[str, ...] | list[str] = ()) -> Path:
        for extra in also:
            dest = tmp_path / extra
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / extra, dest)
        text = (ROOT / relpath).read_text(encoding="utf-8")
        assert old in text, f"{relpath} no longer contains {old!r}: update the broken-copy test"
        dest = tmp_path / relpath
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text.replace(old, new, 1), encoding="utf-8")
        return dest

    return make
