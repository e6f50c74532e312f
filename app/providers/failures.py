"""Turning any provider failure into an OpenAI-shaped error that names the host and what to do.

Provider libraries raise their own exceptions, or raw httpx ones (connection refused is a bare
`httpx.ConnectError` for both Gemini and Ollama), so the generic part walks the exception chain;
LangChain's own model errors (`langchain_core.exceptions.ModelError`: rate limit, API, connection,
timeout...) are recognised for every provider that raises them. Messages never include request
objects or headers (keys travel there); an upstream's own error text is scrubbed and shortened.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import httpx
from langchain_core.exceptions import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)

from app.core.errors import APIError, GenerationError, RateLimited, ServiceUnavailable, UpstreamTimeout
from app.core.logging import scrub
from app.core.models_file import ModelSpec

DETAIL_MAX_CHARS = 300


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


def short_detail(text: object) -> str | None:
    """An upstream's error text fit for a client: secrets scrubbed, one line, bounded."""
    if text is None:
        return None
    line = " ".join(str(text).split())
    if not line:
        return None
    if len(line) > DETAIL_MAX_CHARS:
        line = line[: DETAIL_MAX_CHARS - 1] + "…"
    return scrub(line)


def _retryable(err: APIError) -> APIError:
    err.retryable = True
    return err


def generic_classify(
    exc: BaseException,
    spec: ModelSpec,
    base_url: str | None,
    *,
    detail: str | None = None,
    url_hint: str = "`base_url`",
) -> APIError:
    """A reasonable APIError for any failure talking to a remote model.

    `detail` is the upstream's own (already shortened) explanation, appended where it helps;
    `url_hint` says where the operator sets the address (`base_url`, or `base_url` / OLLAMA_HOST).
    """
    if isinstance(exc, APIError):
        return exc
    host = host_of(base_url)
    name = f"model {spec.name!r}"
    why = f" ({detail})" if detail else ""
    chain = _chain(exc)
    if any(
        isinstance(e, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError, ModelTimeoutError)) for e in chain
    ):
        return _retryable(
            UpstreamTimeout(
                f"{name}: {host} did not answer in time; raise `timeout_s` for this model or check the server's load"
            )
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        hostname = urlsplit(base_url if base_url and "://" in base_url else f"http://{base_url}").hostname or host
        return _retryable(
            ServiceUnavailable(
                f"{name}: cannot resolve the host name {hostname!r} (DNS lookup failed); check the host in {url_hint}",
                code="upstream_unreachable",
            )
        )
    if any(isinstance(e, (httpx.ConnectError, ConnectionRefusedError)) for e in chain):
        return _retryable(
            ServiceUnavailable(
                f"{name}: cannot connect to {host} ({type(chain[-1]).__name__}); "
                f"check that the server is running there and that {url_hint} is right",
                code="upstream_unreachable",
            )
        )
    if any(isinstance(e, (httpx.TransportError, ConnectionError, ModelConnectionError)) for e in chain):
        return _retryable(
            ServiceUnavailable(
                f"{name}: the connection to {host} failed ({type(chain[-1]).__name__}); "
                f"retry, or check the server and {url_hint}",
                code="upstream_unreachable",
            )
        )
    status = status_of(exc)
    if status == 429 or (status is None and any(isinstance(e, ModelRateLimitError) for e in chain)):
        return _retryable(
            RateLimited(
                f"{name}: {host} is rate limiting requests; retry later{why}",
                code="upstream_rate_limited",
                headers={"Retry-After": "5"},
            )
        )
    if (status is not None and status >= 500) or (status is None and any(isinstance(e, ModelAPIError) for e in chain)):
        shown = f"HTTP {status}" if status else "a server error"
        return _retryable(
            ServiceUnavailable(
                f"{name}: {host} failed with {shown}{why}; retry later or check its logs", code="upstream_error"
            )
        )
    if status in (401, 403) or any(
        isinstance(e, (ModelAuthenticationError, ModelPermissionDeniedError)) for e in chain
    ):
        return ServiceUnavailable(
            f"{name}: {host} refused the credentials (HTTP {status}); check {spec.api_key_env or 'the API key'}",
            code="upstream_auth_failed",
        )
    if status == 404 or any(isinstance(e, ModelNotFoundError) for e in chain):
        return ServiceUnavailable(
            f"{name}: {host} does not serve the model {spec.upstream_model!r}{why}; check `model` in the models file",
            code="upstream_model_not_found",
        )
    if status is not None and 400 <= status < 500:
        return GenerationError(
            f"{name}: {host} rejected the request (HTTP {status}){why}",
            status_code=400,
            code="upstream_bad_request",
        )
    if detail:
        return GenerationError(f"{name}: {host} reported an error: {detail}")
    return GenerationError(f"{name}: generation failed ({type(exc).__name__})")

