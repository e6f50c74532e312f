"""Shared fixtures. `server`: one real Slipway (uvicorn + the packaged model) for the whole session.

Also: a test during which a protocol stand-in got a request it does not serve fails with the stand-in's
one-line explanation first (see `tests/protocol_drift.py`), and the run ends with a list of them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.protocol_drift import DRIFT
from tests.servers import SlipwayServer

DRIFT_START = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def server() -> Iterator[SlipwayServer]:
    """The default service as README's first command starts it (packaged model, SQLite, no auth)."""
    with SlipwayServer() as s:
        yield s


JS = Path(__file__).resolve().parent / "js"


@pytest.fixture(scope="session")
def js_clients(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/js (the official `ollama` JavaScript client) installed with `npm ci` (exactly its
    package-lock.json) into a temporary copy."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.fail("node and npm are needed (scripts/bootstrap.sh dev installs them)")
    where = tmp_path_factory.mktemp("js")
    for name in ("package.json", "package-lock.json", "ollama_client.mjs"):
        shutil.copy(JS / name, where / name)
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=where,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return where


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run that includes the container test starts building the image now, beside the other tests
    (tests/deploy/image_build.py)."""
    if any(item.get_closest_marker("docker") for item in session.items):
        from tests.deploy.image_build import BUILD, missing_prerequisites

        if not missing_prerequisites():
            BUILD.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The build's engine stops with the run even when the container tests never ran (-x, -k)."""
    from tests.deploy.image_build import BUILD

    BUILD.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[DRIFT_START] = len(DRIFT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if call.when != "call":
        return
    new = sorted(set(DRIFT[item.stash.get(DRIFT_START, len(DRIFT)) :]))
    if new:
        report.outcome = "failed"
        report.longrepr = "\n".join(new) + (f"\n\n{report.longrepr}" if report.longrepr else "")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if DRIFT:
        terminalreporter.section("client protocol changes seen by the stand-ins")
        for line in sorted(set(DRIFT)):
            terminalreporter.write_line(line)
