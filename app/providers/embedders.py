"""Embedding models behind one small interface: texts in, vectors and the input token count out.

Why each provider's own client rather than LangChain's `Embeddings` classes: those return vectors
only, while a client of `/v1/embeddings` is owed `usage`, which each upstream reports (Ollama's
`prompt_eval_count`, OpenAI's `usage.prompt_tokens`, Gemini's `usageMetadata` when it sends it;
0 when it does not). Each client is cheap to build (no connection is made until a request) and its
retries are off: as for chat, a failure is classified by the provider and returned, not retried here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class Embedded:
    vectors: list[list[float]]
    prompt_tokens: int


class Embedder(Protocol):
    async def embed(self, texts: list[str], dimensions: int | None) -> Embedded: ...

    async def aclose(self) -> None: ...


class OllamaEmbedder:
    """Ollama's `POST /api/embed` (the official `ollama` client)."""

    def __init__(self, model: str, host: str, timeout: Any) -> None:
        from ollama import AsyncClient

        self.model = model
        self.client = AsyncClient(host=host, timeout=timeout)

    async def embed(self, texts: list[str], dimensions: int | None) -> Embedded:
        answer = await self.client.embed(model=self.model, input=texts, dimensions=dimensions, truncate=True)
        vectors = [list(v) for v in answer.embeddings]
        return Embedded(vectors, answer.prompt_eval_count or 0)

    async def aclose(self) -> None:
        await self.client.close()


class OpenAIEmbedder:
    """An OpenAI-compatible `POST /v1/embeddings` (vLLM, llama.cpp server, Azure OpenAI), through the
    openai SDK; floats asked for, so the service encodes base64 itself when a client wants it."""

    def __init__(self, model: str, base_url: str, api_key: str, timeout: float) -> None:
        from openai import AsyncOpenAI

        self.model = model
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    async def embed(self, texts: list[str], dimensions: int | None) -> Embedded:
        extra: dict[str, Any] = {"dimensions": dimensions} if dimensions is not None else {}
        answer = await self.client.embeddings.create(model=self.model, input=texts, encoding_format="float", **extra)
        ordered = sorted(answer.data, key=lambda d: d.index)
        return Embedded([list(d.embedding) for d in ordered], answer.usage.prompt_tokens if answer.usage else 0)

    async def aclose(self) -> None:
        await self.client.close()


class GeminiEmbedder:
    """Gemini's `batchEmbedContents` (google-genai, the client langchain-google-genai is built on)."""

    def __init__(self, model: str, api_key: str, base_url: str | None, timeout_s: float) -> None:
        from google import genai
        from google.genai import types

        self.model = model
        options = types.HttpOptions(base_url=base_url, timeout=int(timeout_s * 1000), retry_options=None)
        self.client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    async def embed(self, texts: list[str], dimensions: int | None) -> Embedded:
        from google.genai import types

        config = types.EmbedContentConfig(output_dimensionality=dimensions) if dimensions is not None else None
        contents: Any = texts  # one text per content: the SDK's union type is invariant in list's item
        answer = await self.client.aio.models.embed_content(model=self.model, contents=contents, config=config)
        vectors = [list(e.values or []) for e in answer.embeddings or []]
        usage = answer.usage_metadata
        tokens = getattr(usage, "prompt_token_count", None) or 0
        return Embedded(vectors, tokens)

    async def aclose(self) -> None:
        await self.client.aio.aclose()
