"""Semantic similarity through an embedding provider: a stand-in OpenAI-compatible /v1/embeddings on
loopback whose vectors are known (letter counts), so every cosine can be checked by hand; cached on a
re-run; the embedded model refused with a reason."""

from __future__ import annotations

import json
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.servers import ROOT, free_port

PAIRS = [
    {"id": "1", "prediction": "Paris is the capital.", "reference": ["The capital of France is Paris.", "Paris."]},
    {"id": "2", "prediction": "Osaka.", "reference": "Tokyo."},
    {"id": "3", "prediction": "", "reference": "Rome."},
]


def letters(text: str) -> list[float]:
    low = text.lower()
    return [float(low.count(c)) for c in string.ascii_lowercase]


class StandInEmbeddings:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.app = Starlette(routes=[Route("/v1/embeddings", self.embeddings, methods=["POST"])])

    async def embeddings(self, request: Request) -> JSONResponse:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.batches.append(texts)
        data = [{"object": "embedding", "index": i, "embedding": letters(t)} for i, t in enumerate(texts)]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})


@pytest.fixture
def stand_in() -> Iterator[StandInEmbeddings]:
    fake = StandInEmbeddings()
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=fake.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield fake
    server.should_exit = True
    thread.join(10)


def expected(pred: str, refs: list[str]) -> float:
    def cos(a: list[float], b: list[float]) -> float:
        x, y = np.array(a), np.array(b)
        n = float(np.linalg.norm(x) * np.linalg.norm(y))
        return float(x @ y / n) if n else 0.0

    return max(cos(letters(pred or " "), letters(r)) for r in refs)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eval", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_similarity_is_the_best_cosine_over_the_references_and_is_cached(stand_in: StandInEmbeddings, tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    args = ["score", str(preds), "--similarity", f"openai:{stand_in.url}", "--similarity-model", "letters"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    done = cli(*args, "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "a/results.jsonl").read_text().splitlines())}
    for pair in PAIRS:
        refs = pair["reference"] if isinstance(pair["reference"], list) else [pair["reference"]]
        assert rows[pair["id"]]["metrics"]["similarity"] == pytest.approx(expected(pair["prediction"], refs))
    summary = json.loads((tmp_path / "a/summary.json").read_text())["metrics"]["similarity"]
    values = [r["metrics"]["similarity"] for r in rows.values()]
    assert summary["value"] == pytest.approx(sum(values) / 3)
    assert summary["ci_low"] <= summary["value"] <= summary["ci_high"]
    assert sum(len(b) for b in stand_in.batches) == 3 + 4  # each answer and each reference, once
    again = cli(*args, "--out", str(tmp_path / "b"))
    assert again.returncode == 0, again.stderr
    assert sum(len(b) for b in stand_in.batches) == 7, "a re-run takes every similarity from the cache"
    gated = cli(*args, "--out", str(tmp_path / "c"), "--fail-under", "similarity=0.99")
    assert gated.returncode == 1 and "similarity" in gated.stderr


def test_the_embedded_model_has_no_embeddings_and_says_so(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps(PAIRS[0]) + "\n")
    done = cli("score", str(preds), "--out", str(tmp_path / "o"), "--similarity", "local")
    assert done.returncode == 2 and "no embeddings" in done.stderr
