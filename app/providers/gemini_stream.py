"""Gemini on the API path without LangChain's streaming layers: the request is built by the chat model's
own builder (`ChatGoogleGenerativeAI._prepare_request`, so Gemini receives exactly what LangChain
sends: tests/providers/test_wire_equivalence.py records both) and sent with the google-genai client
the chat model holds; the streamed responses are read straight into `Piece`s.

What is skipped per chunk: LangChain's callback run, `_response_to_result` and an `AIMessageChunk`
(the layers that cost the OpenAI path most of its CPU before `openai_wire`). Chains keep the LangChain
model. Read like LangChain reads it: text without thought parts, function calls with their id (a new
one when Gemini sends none) and JSON arguments, the candidate's finish reason, a blocked prompt as
`SAFETY`, and usage from the last cumulative `usageMetadata` (tool-use prompt tokens counted as input,
thought tokens as output).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from app.core.output import TEXT, OutputSpec
from app.providers.base import Piece


class GeminiStream:
    def __init__(self, provider: Any, chat_model: Any) -> None:
        self.provider = provider
        self.chat_model = chat_model

    def request(self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec) -> dict[str, Any]:
        """What `ChatGoogleGenerativeAI._astream` would send, built by its own code."""
        kwargs = {**self.provider.call_kwargs(params), **self.provider.output_kwargs(output)}
        stop = kwargs.pop("stop", None)
        if output.offers_tools:
            choice = output.tool_choice
            kwargs["tools"] = [convert_to_openai_tool(t.openai()) for t in output.tools]
            if choice != "auto":
                kwargs["tool_choice"] = "any" if choice == "required" else choice
        model = self.chat_model
        return model._prepare_request(list(messages), stop=stop, cached_content=model.cached_content, **kwargs)

    async def stream(
        self, messages: Sequence[BaseMessage], params: dict[str, Any], output: OutputSpec = TEXT
    ) -> AsyncIterator[Piece]:
        request = self.request(messages, params, output)
        responses = await self.chat_model.async_client.models.generate_content_stream(**request)
        usage: Any = None
        calls = 0
        try:
            async for response in responses:
                piece = Piece()
                candidates = response.candidates or []
                if candidates:
                    candidate = candidates[0]
                    parts = (candidate.content.parts if candidate.content else None) or []
                    piece.text = "".join(p.text for p in parts if p.text and not p.thought)
                    for part in parts:
                        if part.function_call is None:
                            continue
                        call = part.function_call
                        piece.tool_calls = piece.tool_calls or []
                        piece.tool_calls.append(
                            {
                                "index": calls,
                                "id": str(call.id) if call.id else str(uuid.uuid4()),
                                "type": "function",
                                "function": {"name": call.name or "", "arguments": json.dumps(dict(call.args or {}))},
                            }
                        )
                        calls += 1
                    if candidate.finish_reason is not None:
                        piece.finish_reason = candidate.finish_reason.name
                feedback = response.prompt_feedback
                if feedback is not None and feedback.block_reason and not piece.finish_reason:
                    name = getattr(feedback.block_reason, "name", str(feedback.block_reason))
                    if name not in ("BLOCKED_REASON_UNSPECIFIED", "0"):
                        piece.finish_reason = "SAFETY"
                usage = response.usage_metadata or usage
                if piece.text or piece.tool_calls or piece.finish_reason:
                    yield piece
        finally:
            aclose = getattr(responses, "aclose", None)
            if aclose is not None:
                await aclose()
        if usage is not None:
            yield Piece(
                prompt_tokens=(usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0),
                completion_tokens=(usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
            )

    async def aclose(self) -> None:
        return None
