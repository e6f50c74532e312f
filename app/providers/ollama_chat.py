"""The Ollama chat model Slipway builds: LangChain's, with `num_ctx` kept on every call."""

from __future__ import annotations

from typing import Any

from langchain_ollama import ChatOllama


class SlipwayChatOllama(ChatOllama):
    """ChatOllama whose `num_ctx` survives per-call `options` (which otherwise replace it wholesale)."""

    def _chat_params(self, messages: list[Any], stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        if self.num_ctx is not None and kwargs.get("options") is not None:
            kwargs["options"] = {"num_ctx": self.num_ctx, **kwargs["options"]}
        return super()._chat_params(messages, stop, **kwargs)
