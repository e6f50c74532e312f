"""The Gemini chat model Slipway builds: LangChain's, with a blocked prompt reported as a finish reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_google_genai import ChatGoogleGenerativeAI


class SlipwayGemini(ChatGoogleGenerativeAI):
    """ChatGoogleGenerativeAI whose stream reports a blocked prompt as a finish reason.

    Gemini answers a blocked prompt with no candidates and `promptFeedback.blockReason`; LangChain turns
    that into an empty chunk without `finish_reason`, which would read as a normal, empty answer.
    """

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            metadata = chunk.message.response_metadata
            if blocked_reason(metadata) and not metadata.get("finish_reason"):
                metadata["finish_reason"] = "SAFETY"
            yield chunk


def blocked_reason(metadata: dict[str, Any]) -> str | None:
    """Why Gemini refused the prompt itself (`promptFeedback.blockReason`), if it did."""
    feedback = metadata.get("prompt_feedback") or {}
    reason = feedback.get("block_reason") if isinstance(feedback, dict) else None
    if not reason:
        return None
    name = str(getattr(reason, "name", reason))
    return None if name in ("0", "BLOCKED_REASON_UNSPECIFIED") else name
