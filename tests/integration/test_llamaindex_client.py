"""LlamaIndex's `OpenAILike` with its defaults (`complete()` posts to the legacy `/v1/completions`) on
the embedded model. LlamaIndex pins openai<3 and the service locks openai 3.x, so it runs in a
virtualenv of its own, installed from tests/clients/llamaindex/requirements.lock (hashes, no
resolution) and kept in the cache folder between runs, keyed by the lock's hash."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, SlipwayServer

pytestmark = pytest.mark.slow

CLIENT = ROOT / "tests" / "clients" / "llamaindex"


@pytest.fixture(scope="module")
def llamaindex_python() -> Path:
    lock = CLIENT / "requirements.lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    venv = cache / "slipway" / f"llamaindex-{digest}"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--require-hashes", "--no-deps", "-r", str(lock)],
            check=True,
            timeout=600,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        done.touch()
    return python


def test_openailike_defaults_complete_and_chat(server: SlipwayServer, llamaindex_python: Path) -> None:
    run = subprocess.run(
        [str(llamaindex_python), str(CLIENT / "client.py"), server.url, "smollm2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert seen["is_chat_model"] is False, "the default: complete() goes to /v1/completions"
    assert seen["complete"].strip() and seen["stream_complete"] == seen["complete"]
    assert "Paris" in seen["chat"] and seen["stream_chat"] == seen["chat"]
    log = server.log_text()
    assert '"/v1/completions"' in log or "/v1/completions" in log
