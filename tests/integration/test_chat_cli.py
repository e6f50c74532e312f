"""`python -m app chat`: the terminal chat on the embedded model, driven through its stdin/stdout;
Ctrl-C (SIGINT) stops the answer being written and the chat goes on."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.slow


def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}


def test_a_conversation_in_the_terminal(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app", "chat"],
        input="What is the capital of France?\n/clear\nSay hello.\n/bye\n",
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "chatting with smollm2" in out.stdout
    assert "Paris" in out.stdout
    assert out.stdout.count(">>> ") == 4  # three inputs answered or handled, then /bye


def test_ctrl_c_stops_an_answer_and_the_chat_goes_on(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, env=env(tmp_path), bufsize=1,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        seen = ""
        while "chatting with" not in seen:
            seen += proc.stdout.readline()
        proc.stdin.write("Write a very long story about the sea, with many chapters.\n")
        proc.stdin.flush()
        first = proc.stdout.read(20)  # the answer has started
        assert first
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.stdin.write("/bye\n")
        proc.stdin.flush()
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "[stopped]" in first + rest
