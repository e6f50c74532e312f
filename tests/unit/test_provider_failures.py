"""Failure classification without a network: exception chains as the libraries raise them."""

from __future__ import annotations

import socket

import httpx
from langchain_core.exceptions import ModelRateLimitError

from app.core.logging import register_secrets
from app.core.models_file import ModelSpec
from app.providers.failures import generic_classify, short_detail

SPEC = ModelSpec(name="m", provider="openai", base_url="http://upstream.example:8000/v1", api_key_env="K")


def raised_from(outer: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise outer from inner
    except BaseException as exc:
        return exc


def test_dns_failure_names_the_host_name() -> None:
    exc = raised_from(httpx.ConnectError("[Errno -2] Name or service not known"), socket.gaierror(-2, "x"))
    err = generic_classify(exc, SPEC, SPEC.base_url)
    assert err.status_code == 503 and "'upstream.example'" in err.message and "DNS" in err.message
    assert err.retryable


def test_rate_limit_without_a_status_is_still_429() -> None:
    err = generic_classify(ModelRateLimitError("slow down"), SPEC, SPEC.base_url)
    assert err.status_code == 429 and err.retryable


def test_client_error_is_not_retryable_and_is_400() -> None:
    request = httpx.Request("POST", "http://upstream.example:8000/v1/chat/completions")
    exc = httpx.HTTPStatusError("bad", request=request, response=httpx.Response(422, request=request))
    err = generic_classify(exc, SPEC, SPEC.base_url, detail="messages: too long")
    assert err.status_code == 400 and not err.retryable
    assert "upstream.example:8000" in err.message and "messages: too long" in err.message


def test_upstream_detail_is_scrubbed_and_bounded() -> None:
    register_secrets(["unit-secret-0123456789"])
    detail = short_detail("key unit-secret-0123456789 is not valid\n" + "x" * 1000)
    assert detail is not None and "unit-secret" not in detail and "\n" not in detail and len(detail) <= 300
