"""Log probabilities of the embedded model's tokens, in OpenAI's `logprobs.content` format.

Why not llama-cpp-python's own `logprobs`: it needs `logits_all=True`, which keeps the logits of every
prompt token (n_ctx x 49,152 floats, 400 MB at 2,048 tokens) for every request. Here a logits
processor sees the model's distribution at each step (before the grammar and the sampler narrow it)
and, at the next step, which token was sampled: one row in memory, only for requests that ask.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Logprobs:
    """A llama.cpp logits processor recording each sampled token's log probability and the `top`
    most likely alternatives."""

    def __init__(self, llm: Any, top: int, prompt_tokens: int) -> None:
        self.llm = llm
        self.top = top
        self.prompt_tokens = prompt_tokens
        self.pending: np.ndarray | None = None
        self.entries: list[dict[str, Any]] = []
        self.sent = 0

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.pending is not None and len(input_ids) > self.prompt_tokens:
            self.entries.append(self._entry(int(input_ids[-1]), self.pending))
        peak = float(scores.max())
        self.pending = scores - (peak + np.log(np.exp(scores - peak).sum()))
        return scores

    def take(self) -> list[dict[str, Any]]:
        """The entries recorded since the last call (a token's entry arrives one step late)."""
        new, self.sent = self.entries[self.sent :], len(self.entries)
        return new

    def _entry(self, token: int, logsm: np.ndarray) -> dict[str, Any]:
        entry = self._token(token, logsm)
        top: list[dict[str, Any]] = []
        if self.top:
            best = np.argpartition(-logsm, self.top)[: self.top]
            top = [self._token(int(t), logsm) for t in best[np.argsort(-logsm[best])]]
        return {**entry, "top_logprobs": top}

    def _token(self, token: int, logsm: np.ndarray) -> dict[str, Any]:
        raw = self.llm.detokenize([token])
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": float(logsm[token]), "bytes": list(raw)}
