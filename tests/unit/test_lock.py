"""The locks: every dependency pinned with hashes, pins within pyproject's bounds, the two locks in
agreement, this environment equal to the lock, and every installer (bootstrap, image, CI) reading it."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from scripts.lockdiff import canonical, differences, locked
from tests.servers import ROOT

RUNTIME = ROOT / "requirements.lock"
DEV = ROOT / "requirements-dev.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def blocks(path: Path) -> dict[str, list[str]]:
    """package -> its requirement block (the pin line and its --hash lines)."""
    out: dict[str, list[str]] = {}
    name = None
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line):
            name = canonical(m[1])
            out.setdefault(name, []).append(line)
        elif name and line.strip().startswith("--hash="):
            out[name].append(line)
        else:
            name = None if not line.startswith(" ") else name
    return out


def requirements(*extras: str) -> list[Requirement]:
    """The project's requirements with these extras; an extra naming the project itself
    (`slipway[mlflow]` in dev) brings in that extra's requirements."""
    reqs = [Requirement(r) for r in PYPROJECT["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in map(Requirement, PYPROJECT["optional-dependencies"][extra]):
            if canonical(req.name) == canonical(PYPROJECT["name"]):
                todo += sorted(req.extras)
            else:
                reqs.append(req)
    return reqs


@pytest.mark.parametrize(("lock", "extras"), [(RUNTIME, ("model",)), (DEV, ("model", "dev"))])
def test_every_dependency_is_pinned_within_its_bounds_with_hashes(lock: Path, extras: tuple[str, ...]) -> None:
    pins = locked(lock)
    for req in requirements(*extras):
        name = canonical(req.name)
        assert name in pins, f"{req.name} is not in {lock.name}: run bash scripts/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), f"{lock.name}: {name}=={pins[name]} breaks {req}"
    for name, block in blocks(lock).items():
        assert any("--hash=sha256:" in line for line in block), f"{lock.name}: {name} has no hash"


def test_the_two_locks_agree_and_the_service_lock_has_no_test_tools() -> None:
    runtime, dev = locked(RUNTIME), locked(DEV)
    assert {n: v for n, v in runtime.items() if n in dev} == {n: dev[n] for n in runtime if n in dev}
    assert set(runtime) <= set(dev)
    for tool in ("pytest", "ruff", "schemathesis", "playwright"):
        assert tool in dev and tool not in runtime


def test_the_unused_llm_cli_is_locked_away() -> None:
    for lock in (RUNTIME, DEV):
        (pin,) = [line for line in lock.read_text().splitlines() if line.startswith("llm==")]
        assert "sys_platform == 'never'" in pin  # never installed


@pytest.mark.skipif(
    os.environ.get("SLIPWAY_TEST_LATEST") == "1", reason="scripts/test.sh --latest runs on the newest releases"
)
def test_this_environment_is_exactly_the_lock() -> None:
    from importlib.metadata import distributions

    have = {canonical(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}
    assert differences(locked(DEV), have) == []


def test_lockdiff_names_newer_older_and_unlocked_packages() -> None:
    lock = {"google-genai": "2.34.0", "httpx": "0.28.1", "fastapi": "0.165.0"}
    have = {"google-genai": "3.6.1", "httpx": "0.28.1", "fastapi": "0.160.0", "extra-pkg": "1.0", "slipway": "0.1.0"}
    assert differences(lock, have) == [
        "extra-pkg 1.0 (not in the lock)",
        "fastapi 0.165.0 -> 0.160.0",
        "google-genai 2.34.0 -> 3.6.1",
    ]


def test_every_installer_reads_the_lock_with_hashes() -> None:
    bootstrap = (ROOT / "scripts/bootstrap.sh").read_text()
    assert "--require-hashes --no-deps -r \"$LOCK\"" in bootstrap
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "--require-hashes -r /tmp/llama.txt" in dockerfile  # a compile in the image checks the sdist
    assert "!requirements.lock" in (ROOT / ".dockerignore").read_text()
    build = (ROOT / "scripts/build-llama-wheel.sh").read_text()
    assert "--hash=sha256:$SHA256" in build
    assert (ROOT / ".ci/run").read_text().strip().endswith("exec bash scripts/test.sh")


def test_llama_cpp_version_and_sdist_hash_come_from_the_lock() -> None:
    (block,) = [b for n, b in blocks(RUNTIME).items() if n == "llama-cpp-python"]
    assert len(block) == 2, "one sdist, one hash"
    assert locked(RUNTIME)["llama-cpp-python"] == locked(DEV)["llama-cpp-python"]
