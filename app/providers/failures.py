"""Turning any provider failure into an OpenAI-shaped error that names the host and what to do.

Provider libraries raise their own exceptions, or raw httpx ones (connection refused is a bare
`httpx.ConnectError` for both Gemini and Ollama), so the generic part walks the exception chain.
Messages never include request objects or headers: keys travel there.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from app.core.errors import APIError, GenerationError, RateLimited, ServiceUnavailable, UpstreamTimeout
from app.core.models_file import ModelSpec

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


def host_of(url: str | None) -> str:
    if not url:
        return "the upstream"
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.netloc or url


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


def status_of(exc: BaseException) -> int | None:
    for item in _chain(exc):
        for attr in ("status_code", "code", "status"):
            value = getattr(item, attr, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
        response = getattr(item, "response", None)
        value = getattr(response, "status_code", None)
        if isinstance(value, int):
            return value
    return None


def generic_classify(exc: BaseException, spec: ModelSpec, base_url: str | None) -> APIError:
    """A reasonable APIError for any failure talking to a remote model."""
    if isinstance(exc, APIError):
        return exc
    host = host_of(base_url)
    chain = _chain(exc)
    if any(isinstance(e, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)) for e in chain):
        err: APIError = UpstreamTimeout(
            f"model {spec.name!r}: {host} did not answer in time; raise `timeout_s` for this model "
            "or check the server's load"
        )
        err.retryable = True  # type: ignore[attr-defined]
        return err
    if any(isinstance(e, (httpx.ConnectError, ConnectionError, httpx.RemoteProtocolError)) for e in chain):
        err = ServiceUnavailable(
            f"model {spec.name!r}: cannot connect to {host} ({type(chain[-1]).__name__}); "
            f"check that the server is running and that `base_url` is right",
            code="upstream_unreachable",
        )
        err.retryable = True  # type: ignore[attr-defined]
        return err
    status = status_of(exc)
    if status == 429:
        err = RateLimited(
            f"model {spec.name!r}: {host} is rate limiting requests; retry later",
            code="upstream_rate_limited",
            headers={"Retry-After": "5"},
        )
        err.retryable = True  # type: ignore[attr-defined]
        return err
    if status is not None and status >= 500:
        err = ServiceUnavailable(
            f"model {spec.name!r}: {host} failed with HTTP {status}; retry later or check its logs",
            code="upstream_error",
        )
        err.retryable = True  # type: ignore[attr-defined]
        return err
    if status in (401, 403):
        return ServiceUnavailable(
            f"model {spec.name!r}: {host} refused the credentials (HTTP {status}); check "
            f"{spec.api_key_env or 'the API key'}",
            code="upstream_auth_failed",
        )
    if status is not None and 400 <= status < 500:
        return GenerationError(
            f"model {spec.name!r}: {host} rejected the request (HTTP {status})",
            status_code=400,
            code="upstream_bad_request",
        )
    return GenerationError(f"model {spec.name!r}: generation failed ({type(exc).__name__})")


def is_retryable(err: APIError) -> bool:
    return bool(getattr(err, "retryable", False))
