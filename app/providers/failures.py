"""Turning any provider failure into an OpenAI-shaped error that names the host and what to do.

Provider libraries raise their own exceptions, or raw httpx/aiohttp ones (connection refused is a bare
`httpx.ConnectError` for both Gemini and Ollama), so the generic part walks the exception chain;
LangChain's own model errors (`langchain_core.exceptions.ModelError`: rate limit, API, connection,
timeout...) are recognised for every provider that raises them. Messages never include request
objects or headers (keys travel there); an upstream's own error text is scrubbed and shortened.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
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


def _has(chain: list[BaseException], *kinds: type[BaseException]) -> bool:
    return any(isinstance(e, kinds) for e in chain)


@dataclass(frozen=True)
class _Failure:
    """One failure talking to a remote model, with what every rule below reads."""

    exc: BaseException
    chain: list[BaseException]
    status: int | None
    name: str
    host: str
    base_url: str | None
    why: str
    detail: str | None
    url_hint: str
    spec: ModelSpec


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
    The rules run in order: the connection (timeout, DNS, refused, broken), then the upstream's status.
    """
    if isinstance(exc, APIError):
        return exc
    failure = _Failure(
        exc=exc,
        chain=_chain(exc),
        status=status_of(exc),
        name=f"model {spec.name!r}",
        host=host_of(base_url),
        base_url=base_url,
        why=f" ({detail})" if detail else "",
        detail=detail,
        url_hint=url_hint,
        spec=spec,
    )
    return _connection_error(failure) or _status_error(failure) or _other_error(failure)


def _connection_error(f: _Failure) -> APIError | None:
    """Timeouts and transport failures: the model may answer on another try (retryable)."""
    if _has(f.chain, httpx.TimeoutException, asyncio.TimeoutError, TimeoutError, ModelTimeoutError):
        return _retryable(
            UpstreamTimeout(
                f"{f.name}: {f.host} did not answer in time; raise `timeout_s` for this model or check the server's load"
            )
        )
    if _has(f.chain, socket.gaierror):
        url = f.base_url if f.base_url and "://" in f.base_url else f"http://{f.base_url}"
        hostname = urlsplit(url).hostname or f.host
        return _retryable(
            ServiceUnavailable(
                f"{f.name}: cannot resolve the host name {hostname!r} (DNS lookup failed); "
                f"check the host in {f.url_hint}",
                code="upstream_unreachable",
            )
        )
    if _has(f.chain, httpx.ConnectError, ConnectionRefusedError):
        return _retryable(
            ServiceUnavailable(
                f"{f.name}: cannot connect to {f.host} ({type(f.chain[-1]).__name__}); "
                f"check that the server is running there and that {f.url_hint} is right",
                code="upstream_unreachable",
            )
        )
    if _has(f.chain, httpx.TransportError, ConnectionError, ModelConnectionError, aiohttp.ClientError):
        return _retryable(
            ServiceUnavailable(
                f"{f.name}: the connection to {f.host} failed ({type(f.chain[-1]).__name__}); "
                f"retry, or check the server and {f.url_hint}",
                code="upstream_unreachable",
            )
        )
    return None


def _status_error(f: _Failure) -> APIError | None:
    """What the upstream's status (or LangChain's error class, when no status is known) says."""
    status, unknown = f.status, f.status is None
    if status == 429 or (unknown and _has(f.chain, ModelRateLimitError)):
        return _retryable(
            RateLimited(
                f"{f.name}: {f.host} is rate limiting requests; retry later{f.why}",
                code="upstream_rate_limited",
                headers={"Retry-After": "5"},
            )
        )
    if (status is not None and status >= 500) or (unknown and _has(f.chain, ModelAPIError)):
        shown = f"HTTP {status}" if status else "a server error"
        return _retryable(
            ServiceUnavailable(
                f"{f.name}: {f.host} failed with {shown}{f.why}; retry later or check its logs", code="upstream_error"
            )
        )
    if status in (401, 403) or _has(f.chain, ModelAuthenticationError, ModelPermissionDeniedError):
        return ServiceUnavailable(
            f"{f.name}: {f.host} refused the credentials (HTTP {status}); check {f.spec.api_key_env or 'the API key'}",
            code="upstream_auth_failed",
        )
    if status == 404 or _has(f.chain, ModelNotFoundError):
        return ServiceUnavailable(
            f"{f.name}: {f.host} does not serve the model {f.spec.upstream_model!r}{f.why}; "
            "check `model` in the models file",
            code="upstream_model_not_found",
        )
    if status is not None and 400 <= status < 500:
        return GenerationError(
            f"{f.name}: {f.host} rejected the request (HTTP {status}){f.why}",
            status_code=400,
            code="upstream_bad_request",
        )
    return None


def _other_error(f: _Failure) -> APIError:
    if f.detail:
        return GenerationError(f"{f.name}: {f.host} reported an error: {f.detail}")
    return GenerationError(f"{f.name}: generation failed ({type(f.exc).__name__})")
