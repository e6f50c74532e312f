"""Structured JSON logs with every secret scrubbed, from our code and from libraries alike.

Why scrub at the formatter: a key can reach a log line through a library (Gemini puts `?key=` in
URLs, httpx logs URLs at DEBUG), so every record, ours or not, passes through `scrub()`. Values are
scrubbed before the line is rendered, never the rendered line: a pattern run over serialized JSON ate
the escape before a closing quote and wrote invalid JSON.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_SECRETS: set[str] = set()
_PATTERNS = [
    (re.compile(r"([?&](?:key|api_key|apikey|token|access_token)=)[^&\s\"']+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\1***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-***"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "AIza***"),
    # `Authorization: Bearer x` is left to the Bearer pattern, which needs a token-shaped value, so the
    # service's own help text ("send `Authorization: Bearer <key>`") stays readable.
    (
        re.compile(r"((?:x-goog-api-key|authorization|api-key)['\"]?\s*[:=]\s*['\"]?)(?!Bearer\b)[^'\"\s,}]+", re.I),
        r"\1***",
    ),
]


def register_secrets(values: Iterable[str | None]) -> None:
    """Values that must never appear in a log line (keys, tokens), whatever their shape."""
    for value in values:
        if value and len(value) >= 6:
            _SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def scrub_value(value: object) -> object:
    """Every string inside `value` scrubbed; other objects as their scrubbed repr."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {scrub(str(k)): scrub_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(v) for v in value]
    return scrub(repr(value))


def _scrub_event(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {key: scrub_value(value) for key, value in event.items()}


def configure_logging(level: str = "info", json: bool = True) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _scrub_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # alembic announces each of its plugins at INFO on every start-up: noise, not news.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(root.level, logging.WARNING))
    # google-genai logs "AFC is enabled" at INFO on every request: noise, not news.
    logging.getLogger("google_genai").setLevel(max(root.level, logging.WARNING))
    # httpx logs every upstream request at INFO: a second line per request on the hot path, and the
    # access log already says which model answered and how. At DEBUG it speaks, like everything else.
    logging.getLogger("httpx").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
