"""A Slipway URL target, through the official OpenAI client, against a scripted stand-in on a real
uvicorn: key from SLIPWAY_API_KEY, usage recorded, failures as case errors, --max-errors, the cache
(a re-run sends nothing), Ctrl-C then resume, and chains through /v1/chains/{name}/invoke.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.servers import ROOT, free_port

KEY = "sk-eval-test-key"
ANSWERS = {
    "What is the capital of France?": "The capital of France is Paris.",
    "What is the capital of Japan?": "Tokyo is the capital of Japan.",
}


class FakeSlipway:
    """OpenAI-shaped endpoints; prompts starting with 'fail' get a 400; `delay` slows every answer;
    with `hold_after` = N, chat requests after the N-th wait until `release` is set."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.delay = 0.0
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.require_key = True
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.models),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/chains/{name}/invoke", self.chain, methods=["POST"]),
            ]
        )

    def _denied(self, request: Request) -> JSONResponse | None:
        if self.require_key and request.headers.get("authorization") != f"Bearer {KEY}":
            error = {"message": "invalid API key", "type": "invalid_request_error", "param": None, "code": "bad_key"}
            return JSONResponse({"error": error}, status_code=401)
        return None

    async def models(self, request: Request) -> JSONResponse:
        return self._denied(request) or JSONResponse(
            {"object": "list", "data": [{"id": "stand-in", "object": "model"}]}
        )

    async def chat(self, request: Request) -> JSONResponse:
        if denied := self._denied(request):
            return denied
        body = await request.json()
        self.requests.append(body)
        if self.hold_after is not None and len(self.requests) > self.hold_after:
            await asyncio.to_thread(self.release.wait, 120)
        await asyncio.sleep(self.delay)
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("fail"):
            error = {"message": "scripted failure", "type": "invalid_request_error", "param": None, "code": None}
            return JSONResponse({"error": error}, status_code=400)
        text = ANSWERS.get(prompt, f"An answer about {prompt}")
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }
        )

    async def chain(self, request: Request) -> JSONResponse:
        if denied := self._denied(request):
            return denied
        body = await request.json()
        self.requests.append({"chain": request.path_params["name"], **body})
        words = body["input"]["text"].split()
        usage = {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}
        return JSONResponse({"output": " ".join(words[:6]), "model": body["model"], "usage": usage})


@pytest.fixture
def stand_in() -> Iterator[FakeSlipway]:
    fake = FakeSlipway()
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=fake.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "stand-in did not start"
        time.sleep(0.05)
    yield fake
    server.should_exit = True
    thread.join(10)


def dataset(path: Path, prompts: list[str]) -> Path:
    rows = [
        {"id": f"c{i}", "prompt": p, "reference": ANSWERS.get(p, "The capital of France is Paris.")}
        for i, p in enumerate(prompts)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def env(key: str | None = KEY) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "SLIPWAY_API_KEY"}
    if key:
        out["SLIPWAY_API_KEY"] = key
    return out


def cli(*args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env(key)
    )


def rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def test_run_against_a_slipway_url(stand_in: FakeSlipway, tmp_path: Path) -> None:
    data = dataset(tmp_path / "d.jsonl", [*ANSWERS, "fail please"])
    args = ["run", str(data), "--target", stand_in.url, "--cache-dir", str(tmp_path / "cache"), "--resamples", "50"]
    first = cli(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert [r["model"] for r in stand_in.requests] == ["stand-in"] * 3  # the server's first model
    assert {r["max_tokens"] for r in stand_in.requests} == {128} and {r["temperature"] for r in stand_in.requests} == {
        0
    }
    got = {r["id"]: r for r in rows(tmp_path / "a")}
    assert got["c0"]["prediction"] == "The capital of France is Paris." and got["c0"]["metrics"]["exact_match"] == 1.0
    assert got["c0"]["usage"] == {"prompt_tokens": 11, "completion_tokens": 7}
    assert "scripted failure" in got["c2"]["error"] and "metrics" not in got["c2"]
    summary = json.loads((tmp_path / "a/summary.json").read_text())
    assert summary["n"] == 3 and summary["errors"] == 1 and summary["model"] == "stand-in"
    assert summary["usage"] == {"prompt_tokens": 22, "completion_tokens": 14}
    assert summary["latency_s"]["p50"] > 0
    assert KEY not in first.stdout + first.stderr + (tmp_path / "a/results.jsonl").read_text()

    # A re-run answers from the cache: nothing reaches the server except the failed case again.
    sent = len(stand_in.requests)
    second = cli(*args, "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    assert len(stand_in.requests) == sent + 1
    assert [r["prediction"] for r in rows(tmp_path / "b")] == [r["prediction"] for r in rows(tmp_path / "a")]
    assert json.loads((tmp_path / "b/summary.json").read_text())["cached"] == 2


def test_wrong_key_or_unknown_model_is_a_usage_error(stand_in: FakeSlipway, tmp_path: Path) -> None:
    data = dataset(tmp_path / "d.jsonl", list(ANSWERS))
    base = ["run", str(data), "--target", stand_in.url, "--no-cache", "--out", str(tmp_path / "o")]
    for key in ("sk-wrong", None):
        out = cli(*base, key=key)
        assert out.returncode == 2, out.stderr
        assert "invalid API key" in out.stderr and "sk-wrong" not in out.stderr
        assert "SLIPWAY_API_KEY" in out.stderr.replace("\n", "")
    out = cli(*base, "--model", "nope")
    assert out.returncode == 2 and "'nope' is not served" in out.stderr and "stand-in" in out.stderr
    assert stand_in.requests == []
    assert not (tmp_path / "o").exists()
    nobody = f"http://127.0.0.1:{free_port()}"
    out = cli("run", str(data), "--target", nobody, "--no-cache", "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "cannot connect to " + nobody in out.stderr.replace("\n", "")


def test_max_errors_stops_the_run_and_exits_1(stand_in: FakeSlipway, tmp_path: Path) -> None:
    data = dataset(tmp_path / "d.jsonl", [f"fail {i}" for i in range(20)])
    out = cli(
        "run", str(data), "--target", stand_in.url, "--no-cache", "--concurrency", "1", "--max-errors", "3",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "--max-errors" in out.stderr
    assert len(stand_in.requests) == 3
    summary = json.loads((tmp_path / "o/summary.json").read_text())
    assert summary["stopped_at_max_errors"] is True and summary["errors"] == 3 and summary["n"] == 3


def test_ctrl_c_keeps_answers_and_a_rerun_resumes(stand_in: FakeSlipway, tmp_path: Path) -> None:
    """Ctrl-C while the sixth answer is in flight: exit 130, five answers cached, a re-run asks only
    for the rest. The stand-in holds the sixth request until the signal has done its work, so the run
    cannot finish first however slow the machine is. The child is started the way a script starts a
    background job (SIGINT ignored, inherited): the cause of this test's old failure under CI."""
    prompts = [f"question {i}" for i in range(12)]
    data = dataset(tmp_path / "d.jsonl", prompts)
    stand_in.hold_after = 5
    args = ["run", str(data), "--target", stand_in.url, "--concurrency", "1", "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "eval", *args, "--out", str(tmp_path / "a")],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(stand_in.requests) < 6:  # the sixth is held open by the stand-in
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        stand_in.release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "resume" in stderr
    assert "the 5 answers so far are cached" in stderr
    assert not (tmp_path / "a").exists()  # nothing written as if the run had finished
    asked = [r["messages"][-1]["content"] for r in stand_in.requests]
    assert asked == prompts[:6]

    stand_in.hold_after = None
    rerun = cli(*args, "--out", str(tmp_path / "b"))
    assert rerun.returncode == 0, rerun.stderr
    again = [r["messages"][-1]["content"] for r in stand_in.requests[len(asked) :]]
    assert again == prompts[5:]  # the one cut off mid-answer, then the six never asked
    assert [r["id"] for r in rows(tmp_path / "b")] == [f"c{i}" for i in range(12)]
    assert json.loads((tmp_path / "b/summary.json").read_text())["cached"] == 5


def test_chain_through_the_chains_api(stand_in: FakeSlipway, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    text = "The bridge closes for repairs on Monday and reopens on Friday morning after inspection."
    data.write_text(
        json.dumps({"id": "s1", "prompt": text, "reference": "The bridge closes Monday.", "metadata": {"sentences": 1}})
        + "\n"
    )
    out = cli(
        "run", str(data), "--target", stand_in.url, "--chain", "summarize", "--model", "stand-in", "--no-cache",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (request,) = stand_in.requests
    assert request["chain"] == "summarize" and request["model"] == "stand-in"
    assert request["input"] == {"text": text, "sentences": 1}
    assert request["params"] == {"temperature": 0.0, "seed": 0, "max_tokens": 128}
    (row,) = rows(tmp_path / "o")
    assert row["prediction"] == "The bridge closes for repairs on" and row["usage"]["completion_tokens"] == 5


async def test_the_api_runs_inside_a_running_event_loop(stand_in: FakeSlipway, tmp_path: Path) -> None:
    """As in a notebook cell: `run` is called from a coroutine and still drives its own loop."""
    from eval import load_dataset, run

    cases = load_dataset(dataset(tmp_path / "d.jsonl", list(ANSWERS)))
    result = run(cases, target=stand_in.url, api_key=KEY, use_cache=False, resamples=50)
    assert [r["prediction"] for r in result.rows] == list(ANSWERS.values())
    assert result.values["exact_match"] == 1.0
    assert not list(tmp_path.glob("*/report.html"))  # no `out`: nothing written


def test_in_process_chain_generates_with_the_run_parameters(stand_in: FakeSlipway, tmp_path: Path) -> None:
    """`openai:URL` runs the service's own summarize chain in-process; the stand-in is its upstream."""
    stand_in.require_key = False
    data = tmp_path / "d.jsonl"
    text = "The museum reopens on Saturday after a year of renovation, with free entry all weekend."
    data.write_text(
        json.dumps({"id": "s1", "input": {"text": text, "sentences": 1}, "reference": "The museum reopens Saturday."})
        + "\n"
    )
    out = cli(
        "run", str(data), "--target", f"openai:{stand_in.url}/v1", "--model", "stand-in", "--chain", "summarize",
        "--max-tokens", "40", "--seed", "7", "--no-cache", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (request,) = stand_in.requests
    assert request.get("max_completion_tokens", request.get("max_tokens")) == 40  # langchain-openai's name for it
    assert request["temperature"] == 0 and request["seed"] == 7
    assert text in json.dumps(request["messages"])
    (row,) = rows(tmp_path / "o")
    assert row["error"] is None and row["prediction"].startswith("An answer about")
