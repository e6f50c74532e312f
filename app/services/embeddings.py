"""Embeddings: texts to vectors on the models file's `kind: embedding` entries, for OpenAI's
`/v1/embeddings` and Ollama's `/api/embed` alike.

The same discipline as generation, smaller: a place in the model's queue (`Slots`), the entry's total
timeout, and failures classified by the provider (503 naming the host when it is down, 429 when it
limits, ...). No retries or fallbacks: a client of an embedding API retries itself, and vectors from
a fallback model would not be comparable with the ones it stored before.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
from dataclasses import dataclass
from typing import Any

from app.core.config import Settings
from app.core.errors import APIError, ServiceUnavailable, UpstreamFormatError, UpstreamTimeout
from app.providers.embedders import Embedded
from app.providers.failures import generic_classify
from app.providers.registry import ModelHandle, ModelRegistry

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Embedding:
    handle: ModelHandle
    result: Embedded

    @property
    def model(self) -> str:
        return self.handle.name


def as_base64(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: the little-endian float32 array, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


class Embeddings:
    def __init__(self, registry: ModelRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    async def embed(self, model: str | None, texts: list[str], dimensions: int | None = None) -> Embedding:
        handle = self.registry.embedding(model)
        embedder = handle.embedder
        if embedder is None:
            raise ServiceUnavailable(
                handle.detail or f"model {handle.name!r} is not configured", code="provider_not_configured"
            )
        timeout = handle.spec.timeout_s or self.settings.default_timeout_s
        async with handle.slots.hold():
            try:
                async with asyncio.timeout(timeout):
                    result = await embedder.embed(texts, dimensions)
            except TimeoutError:
                raise UpstreamTimeout(f"model {handle.name!r} exceeded its timeout ({timeout:g} s)") from None
            except APIError:
                raise
            except Exception as exc:
                error = handle.provider.classify(exc, handle.spec, self.settings) or generic_classify(
                    exc, handle.spec, handle.spec.base_url
                )
                log.warning("model %s: %s", handle.name, error.message)
                raise error from None
        _check(handle, result, len(texts), dimensions)
        return Embedding(handle, result)

    @staticmethod
    def openai_body(embedding: Embedding, encoding_format: str) -> dict[str, Any]:
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": as_base64(vector) if encoding_format == "base64" else vector,
            }
            for index, vector in enumerate(embedding.result.vectors)
        ]
        tokens = embedding.result.prompt_tokens
        return {
            "object": "list",
            "data": data,
            "model": embedding.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _check(handle: ModelHandle, result: Embedded, count: int, dimensions: int | None) -> None:
    """An upstream answer that cannot be what was asked for: 502 saying how."""
    if len(result.vectors) != count:
        raise UpstreamFormatError(f"model {handle.name!r} returned {len(result.vectors)} vectors for {count} inputs")
    sizes = {len(v) for v in result.vectors}
    if dimensions is not None and sizes != {dimensions}:
        got = ", ".join(str(s) for s in sorted(sizes))
        raise UpstreamFormatError(
            f"model {handle.name!r} returned {got}-dimensional vectors where {dimensions} were asked for: "
            "it does not support `dimensions`; leave it out"
        )
