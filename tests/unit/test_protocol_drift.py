"""A stand-in that gets a path it does not serve says so in one line, and the test that caused it fails
with that line first, even when its own assertions would have passed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.protocol_drift import DRIFT, drift_route, gemini_shape, ollama_shape
from tests.servers import ROOT


def test_an_unknown_path_gets_a_501_in_the_providers_shape_and_one_line() -> None:
    start = len(DRIFT)
    app = Starlette(routes=[drift_route("Gemini", "POST /v1/models/...", gemini_shape)])
    try:
        r = TestClient(app).post("/v2/models/gemini-3.8-flash:generateContent", json={})
        assert r.status_code == 501
        line = "the Gemini stand-in got POST /v2/models/gemini-3.8-flash:generateContent: the client changed its protocol"
        assert r.json()["error"]["message"].startswith(line) and r.json()["error"]["status"] == "UNIMPLEMENTED"
        assert DRIFT[start:] == [r.json()["error"]["message"]]
        ollama = TestClient(Starlette(routes=[drift_route("Ollama", "POST /api/chat", ollama_shape)]))
        assert ollama.get("/api/v2/tags").json() == {"error": DRIFT[-1]}
    finally:
        del DRIFT[start:]  # this test made them on purpose


INNER = '''
from starlette.applications import Starlette
from starlette.testclient import TestClient
from tests.protocol_drift import drift_route, openai_shape

def test_a_client_calls_a_new_path():
    app = Starlette(routes=[drift_route("OpenAI-compatible", "POST /v1/chat/completions", openai_shape)])
    TestClient(app).post("/v2/chat/completions", json={})  # the test itself asserts nothing

def test_untouched():
    assert True
'''


def test_the_test_during_which_it_happened_fails_with_that_line(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport, pytest_runtest_setup, pytest_terminal_summary\n"
    )
    (tmp_path / "test_inner.py").write_text(INNER)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 failed, 1 passed" in out.stdout
    line = "the OpenAI-compatible stand-in got POST /v2/chat/completions: the client changed its protocol"
    assert out.stdout.count(line) == 2, out.stdout  # in the failure, and in the summary at the end
    assert "client protocol changes seen by the stand-ins" in out.stdout
