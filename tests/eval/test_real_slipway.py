"""`python -m eval run` against a real Slipway (uvicorn + the packaged model), chat and a chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, SlipwayServer

pytestmark = pytest.mark.slow
SAMPLE = ROOT / "eval" / "datasets" / "sample.jsonl"


def run_eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", "run", *args, "--no-cache", "--max-tokens", "48", "--resamples", "50"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


def test_chat_and_chain_through_a_running_slipway(server: SlipwayServer, tmp_path: Path) -> None:
    chat = run_eval(str(SAMPLE), "--target", server.url, "--limit", "3", "--out", str(tmp_path / "chat"))
    assert chat.returncode == 0, chat.stderr
    summary = json.loads((tmp_path / "chat/summary.json").read_text())
    assert summary["n"] == 3 and summary["errors"] == 0 and summary["model"] == "smollm2"
    assert summary["usage"]["completion_tokens"] > 0 and summary["latency_s"]["max"] > 0
    rows = [json.loads(x) for x in (tmp_path / "chat/results.jsonl").read_text().splitlines()]
    assert all(r["prediction"].strip() and r["usage"]["prompt_tokens"] > 0 for r in rows)

    summaries = tmp_path / "sum.jsonl"
    picked = [line for line in SAMPLE.read_text().splitlines() if '"sum-0' in line][:2]
    summaries.write_text("".join(line + "\n" for line in picked))
    chain = run_eval(str(summaries), "--target", server.url, "--chain", "summarize", "--out", str(tmp_path / "chain"))
    assert chain.returncode == 0, chain.stderr
    rows = [json.loads(x) for x in (tmp_path / "chain/results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["error"] is None and r["prediction"].strip() for r in rows)
    assert all(r["usage"]["completion_tokens"] > 0 for r in rows)
