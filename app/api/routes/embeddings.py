"""POST /v1/embeddings (OpenAI's contract) on the models file's embedding entries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from app.api.deps import EmbeddingsDep
from app.api.routing import SlipwayRoute
from app.protocol.openai import EmbeddingRequest

router = APIRouter(prefix="/v1", tags=["openai"], route_class=SlipwayRoute)


@router.post("/embeddings")
async def create_embeddings(body: EmbeddingRequest, embeddings: EmbeddingsDep, response: Response) -> dict[str, Any]:
    embedding = await embeddings.embed(body.model, body.texts, body.dimensions)
    response.headers["X-Slipway-Model"] = embedding.model
    return embeddings.openai_body(embedding, body.encoding_format)
