"""Unreachable and failing upstreams, per provider: OpenAI-shaped 503 (504 for a timeout) naming the
host and what to do; the service keeps serving its other models; /readyz reports without failing."""

from __future__ import annotations

import httpx
import pytest

from tests.providers.conftest import GEMINI_KEY, VLLM_KEY, assert_error, chat, stream_events
from tests.servers import SlipwayServer

pytestmark = pytest.mark.slow  # starts a real Slipway and generates with the local model

PROVIDERS = ["ollama", "gemini", "openai"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_connection_refused_is_503_naming_the_host(remote: SlipwayServer, provider: str) -> None:
    err = assert_error(chat(remote, f"{provider}-refused"), 503, "upstream_unreachable")
    assert "cannot connect to 127.0.0.1:" in err["message"]
    assert "check that the server is running" in err["message"]
    assert err["type"] == "service_unavailable"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_dns_failure_is_503_naming_the_host(remote: SlipwayServer, provider: str) -> None:
    err = assert_error(chat(remote, f"{provider}-dns"), 503, "upstream_unreachable")
    assert f"'{provider}-standin.invalid'" in err["message"] and "DNS" in err["message"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_504(remote: SlipwayServer, provider: str) -> None:
    err = assert_error(chat(remote, f"{provider}-slow"), 504, "timeout")
    assert f"'{provider}-slow'" in err["message"] and "timeout" in err["message"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_upstream_5xx_is_503_naming_the_host_and_status(remote: SlipwayServer, provider: str) -> None:
    err = assert_error(chat(remote, f"{provider}-5xx"), 503, "upstream_error")
    assert "127.0.0.1:" in err["message"] and "HTTP 5" in err["message"]
    assert "retry later" in err["message"]


def test_stream_failing_before_the_first_token_gets_a_real_status(remote: SlipwayServer) -> None:
    r, events = stream_events(remote, "ollama-refused")
    assert_error(r, 503, "upstream_unreachable")
    assert events == []


def test_other_models_keep_serving_and_readyz_reports_each_model(remote: SlipwayServer) -> None:
    for name in ("ollama-refused", "gemini-5xx", "openai-slow"):
        chat(remote, name)
    r = chat(remote, "smollm2")
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    ready = httpx.get(remote.url + "/readyz")
    assert ready.status_code == 200, "a dead remote model never fails readiness"
    models = ready.json()["checks"]["models"]
    assert models["smollm2"]["state"] == "ready"
    assert models["ollama-refused"]["state"] == "unavailable"
    assert "cannot connect" in models["ollama-refused"]["detail"]
    assert models["gemini-5xx"]["state"] == "unavailable" and models["openai-slow"]["state"] == "unavailable"
    assert models["gemini-nokey"]["state"] == "not_configured"
    assert {models[n]["provider"] for n in ("llama3.1", "gemini-flash", "vllm")} == {"ollama", "gemini", "openai"}


def test_errors_never_carry_keys(remote: SlipwayServer) -> None:
    for name in ("gemini-refused", "gemini-5xx", "openai-5xx", "openai-refused", "gemini-nokey"):
        text = chat(remote, name).text
        assert GEMINI_KEY not in text and VLLM_KEY not in text
