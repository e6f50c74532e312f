"""Stand-in upstreams (Ollama, Gemini, OpenAI-compatible) on loopback, and a real Slipway serving them.

One Slipway (`python -m app` with a models file) serves every scenario at once: each entry points at
a stand-in and names an upstream model whose name chooses its behaviour (see `standins`), so tests
stay independent while the server starts once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.providers.llama_cpp import ChatLlamaCpp, packaged_model_path
from tests.providers.standins import LocalText, StandIn, gemini_routes, ollama_routes, openai_routes
from tests.servers import SlipwayServer, free_port, write_models_file

GEMINI_KEY = "AIzaSyStandInKey-0123456789abcdefghijkl"
VLLM_KEY = "vllm-standin-key-9f8e7d6c5b4a"
SYSTEM = "Answer in one short sentence."


@dataclass
class StandIns:
    ollama: StandIn
    gemini: StandIn
    openai: StandIn


@pytest.fixture(scope="session")
def local_text() -> Iterator[LocalText]:
    """The packaged model, loaded once, writing every stand-in's answers."""
    model = ChatLlamaCpp(model_path=packaged_model_path(), model_name="standin", max_tokens=32)
    model.load()
    yield LocalText(model)
    model.close()


@pytest.fixture(scope="session")
def standins(local_text: LocalText) -> Iterator[StandIns]:
    servers = StandIns(
        ollama=StandIn("ollama", ollama_routes, local_text).start(),
        gemini=StandIn("gemini", gemini_routes, local_text).start(),
        openai=StandIn("openai", openai_routes, local_text).start(),
    )
    yield servers
    for s in (servers.ollama, servers.gemini, servers.openai):
        s.stop()


def remote_models(s: StandIns, closed_port: int) -> dict[str, Any]:
    """Every scenario as one models file; names say what each entry tests."""
    refused = f"http://127.0.0.1:{closed_port}"
    params = {"max_tokens": 24}
    ollama = {"provider": "ollama", "base_url": s.ollama.url, "system_prompt": SYSTEM, "params": params}
    gemini = {
        "provider": "gemini",
        "base_url": s.gemini.url,
        "api_key_env": "STANDIN_GEMINI_KEY",
        "system_prompt": SYSTEM,
        "params": params,
    }
    openai = {
        "provider": "openai",
        "base_url": s.openai.url + "/v1",
        "api_key_env": "STANDIN_VLLM_KEY",
        "system_prompt": SYSTEM,
        "params": params,
    }
    return {
        "default_model": "smollm2",
        "models": [
            {"name": "smollm2", "provider": "local", "system_prompt": SYSTEM, "params": {"temperature": 0, **params}},
            # Ollama
            {"name": "llama3.1", **ollama},
            {"name": "ollama-envhost", **{k: v for k, v in ollama.items() if k != "base_url"}, "model": "envhost-a"},
            {"name": "ollama-missing", **ollama, "model": "missing-a"},
            {"name": "ollama-window", **ollama, "model": "window-a", "context_window": 16384},
            {"name": "ollama-refused", **ollama, "base_url": refused},
            {"name": "ollama-dns", **ollama, "base_url": "http://ollama-standin.invalid:11434"},
            {"name": "ollama-slow", **ollama, "model": "slow-a", "first_token_timeout_s": 1},
            {"name": "ollama-5xx", **ollama, "model": "fail-500-a"},
            {"name": "ollama-cut", **ollama, "model": "cut-c"},
            # Gemini
            {"name": "gemini-flash", **gemini},
            {"name": "gemini-safety", **gemini, "model": "safety-a"},
            {"name": "gemini-blocked", **gemini, "model": "blocked-a"},
            {"name": "gemini-nokey", **gemini, "api_key_env": "STANDIN_UNSET_KEY"},
            {"name": "gemini-refused", **gemini, "base_url": refused},
            {"name": "gemini-dns", **gemini, "base_url": "http://gemini-standin.invalid"},
            {"name": "gemini-slow", **gemini, "model": "slow-a", "first_token_timeout_s": 1},
            {"name": "gemini-5xx", **gemini, "model": "fail-503-a"},
            {"name": "gemini-429", **gemini, "model": "fail-429-a"},
            # OpenAI-compatible
            {"name": "vllm", **openai, "model": "meta-llama/Llama-3.1-8B-Instruct"},
            {"name": "openai-refused", **openai, "model": "m", "base_url": refused + "/v1"},
            {"name": "openai-dns", **openai, "model": "m", "base_url": "http://openai-standin.invalid:8000/v1"},
            {"name": "openai-slow", **openai, "model": "slow-a", "first_token_timeout_s": 1},
            {"name": "openai-5xx", **openai, "model": "fail-502-a"},
            {"name": "openai-nokey", **openai, "model": "m", "api_key_env": "STANDIN_UNSET_KEY"},
            # Structured output and tools (room for a whole JSON object or call)
            {"name": "ollama-structured", **ollama, "model": "json-a", "params": {"max_tokens": 200}},
            {"name": "ollama-tools", **ollama, "model": "tools-a", "params": {"max_tokens": 200}},
            {"name": "gemini-structured", **gemini, "model": "json-a", "params": {"max_tokens": 200}},
            {"name": "gemini-tools", **gemini, "model": "tools-a", "params": {"max_tokens": 200}},
            {"name": "vllm-structured", **openai, "model": "json-a", "params": {"max_tokens": 200}},
            {"name": "vllm-tools", **openai, "model": "tools-a", "params": {"max_tokens": 200}},
            # Embeddings (the stand-ins' vectors: `standins.vector_of`)
            {
                "name": "ollama-embed",
                "provider": "ollama",
                "base_url": s.ollama.url,
                "kind": "embedding",
                "model": "embed-a",
            },
            {
                "name": "gemini-embed",
                "provider": "gemini",
                "base_url": s.gemini.url,
                "api_key_env": "STANDIN_GEMINI_KEY",
                "kind": "embedding",
                "model": "embed-a",
            },
            {
                "name": "vllm-embed",
                "provider": "openai",
                "base_url": s.openai.url + "/v1",
                "api_key_env": "STANDIN_VLLM_KEY",
                "kind": "embedding",
                "model": "embed-a",
            },
            {"name": "embed-down", "provider": "ollama", "base_url": refused, "kind": "embedding"},
            {
                "name": "embed-5xx",
                "provider": "openai",
                "base_url": s.openai.url + "/v1",
                "kind": "embedding",
                "model": "fail-500-e",
            },
            # Fallbacks and retries
            {"name": "primary-down", **ollama, "base_url": refused, "fallbacks": ["smollm2"]},
            {"name": "primary-cut", **ollama, "model": "cut-a", "fallbacks": ["smollm2"], "retries": 2},
            {"name": "flaky", **ollama, "model": "flaky-2-a", "retries": 2},
            {"name": "exhausted", **openai, "model": "fail-503-b", "retries": 2},
            {"name": "slow-retried", **gemini, "model": "slow-b", "first_token_timeout_s": 0.5, "retries": 1},
            {
                "name": "unconfigured-first",
                **gemini,
                "api_key_env": "STANDIN_UNSET_KEY",
                "fallbacks": ["unpulled-second", "smollm2"],
            },
            {"name": "unpulled-second", **ollama, "model": "missing-b"},
        ],
    }


@pytest.fixture(scope="session")
def remote(standins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlipwayServer]:
    """Slipway serving the local model plus every stand-in scenario."""
    directory: Path = tmp_path_factory.mktemp("remote")
    config = write_models_file(directory, remote_models(standins, free_port()))
    env = {
        "STANDIN_GEMINI_KEY": GEMINI_KEY,
        "STANDIN_VLLM_KEY": VLLM_KEY,
        "OLLAMA_HOST": standins.ollama.url.removeprefix("http://"),
    }
    with SlipwayServer(config=config, env=env) as server:
        yield server


def chat(
    server: SlipwayServer, model: str, content: str = "What is the capital of France?", **extra: Any
) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)


def stream_events(server: SlipwayServer, model: str, **extra: Any) -> tuple[httpx.Response, list[Any]]:
    """A streamed chat completion: the response and its `data:` payloads (JSON, or the string [DONE])."""
    body = {"model": model, "messages": [{"role": "user", "content": "What is the capital of France?"}], "stream": True}
    events: list[Any] = []
    with httpx.stream("POST", server.url + "/v1/chat/completions", json={**body, **extra}, timeout=60) as r:
        if r.status_code != 200:
            r.read()
            return r, events
        for line in r.iter_lines():
            if line.startswith("data: "):
                payload = line.removeprefix("data: ")
                events.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return r, events


def streamed_text(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if isinstance(e, dict) and e.get("choices")
    )


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object with this status; returns the error."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    if code is not None:
        assert err["code"] == code, err
    return err
