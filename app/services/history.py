"""The history sent to the model: as much of the conversation as fits its context window.

Budget: the model's context window minus the room kept for the answer (the turn's `max_tokens`).
The system prompt and the new user message always stay; whole turns go, oldest first, until the rest
fits. If even the system prompt and the new message do not fit, the request is refused (413)
before anything is stored.

Counting:
- Models that run here (provider `local`) are counted exactly, with the model's own tokenizer and chat
  template (`chat_model.get_num_tokens_from_messages`), as llama.cpp will see the prompt.
- Remote models (OpenAI-compatible, Ollama, Gemini) are estimated, because their tokenizers are not
  available offline: `ceil(characters / 3) + 4` per message plus 3 for the reply's priming. English
  averages about 4 characters per token with GPT-style tokenizers and every chat message costs 3-4
  tokens of framing (OpenAI's cookbook), so dividing by 3 over-counts English on purpose and leaves
  margin for code and other scripts, which tokenize denser. Their window is the entry's
  `context_window`, or `DEFAULT_REMOTE_WINDOW` when the models file does not say.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from langchain_core.messages import BaseMessage

from app.core.errors import PayloadTooLarge
from app.providers.registry import ModelHandle

#: Context window assumed for a remote model whose entry sets none (a common floor for today's models).
DEFAULT_REMOTE_WINDOW = 8192
#: The local provider's window when the entry sets none (`app.providers.local`).
DEFAULT_LOCAL_WINDOW = 2048
#: Room kept for the answer when neither the request, the entry nor a cap sets `max_tokens`.
DEFAULT_ANSWER_TOKENS = 512
CHARS_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REPLY = 3

Counter = Callable[[Sequence[BaseMessage]], Awaitable[int]]


def estimate_tokens(messages: Sequence[BaseMessage]) -> int:
    """The documented estimate for remote models (see the module docstring)."""
    total = TOKENS_PER_REPLY
    for message in messages:
        text = message.content if isinstance(message.content, str) else message.text
        total += TOKENS_PER_MESSAGE + math.ceil(len(text) / CHARS_PER_TOKEN)
    return total


@dataclass(frozen=True)
class Budget:
    window: int
    answer: int
    exact: bool

    @property
    def prompt(self) -> int:
        return self.window - self.answer


def budget_for(handle: ModelHandle, max_tokens: int | None) -> Budget:
    exact = handle.provider.in_process
    window = handle.spec.context_window or (DEFAULT_LOCAL_WINDOW if exact else DEFAULT_REMOTE_WINDOW)
    answer = max_tokens or DEFAULT_ANSWER_TOKENS
    # Keep at least half the window for the prompt: a huge max_tokens must not empty the history.
    answer = min(answer, window // 2)
    return Budget(window=window, answer=answer, exact=exact)


def counter_for(handle: ModelHandle) -> Counter:
    """Exact counting for a loaded in-process model, the estimate otherwise."""
    model = handle.chat_model
    if handle.provider.in_process and model is not None and getattr(model, "loaded", False):

        async def exact(messages: Sequence[BaseMessage]) -> int:
            # Tokenizing a long history takes milliseconds: off the event loop.
            return await asyncio.to_thread(model.get_num_tokens_from_messages, list(messages))

        return exact

    async def estimate(messages: Sequence[BaseMessage]) -> int:
        return estimate_tokens(messages)

    return estimate


def _turn_starts(history: Sequence[BaseMessage]) -> list[int]:
    """Where each turn of the history begins (a human message), so whole turns are dropped together."""
    starts = [i for i, m in enumerate(history) if m.type == "human"]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return starts


async def fit_history(
    *,
    system: BaseMessage | None,
    history: Sequence[BaseMessage],
    new: BaseMessage,
    budget: Budget,
    count: Counter,
) -> tuple[list[BaseMessage], int]:
    """The messages to send and their token count; drops the oldest turns that do not fit.

    Counts are monotonic in the number of turns kept, so a binary search over the cut point needs
    about log2(turns) counts (one when everything fits, the common case).
    """
    head = [system] if system is not None else []

    def build(cut: int) -> list[BaseMessage]:
        return [*head, *history[cut:], new]

    limit = budget.prompt
    full = await count(build(0))
    if full <= limit:
        return build(0), full
    minimal = await count(build(len(history)))
    if minimal > limit:
        raise PayloadTooLarge(
            f"The message and system prompt take about {minimal} tokens; the model's context window is "
            f"{budget.window} tokens with {budget.answer} kept for the answer. Send a shorter message.",
            param="content",
            code="context_length_exceeded",
        )
    starts = [*_turn_starts(history)[1:], len(history)]  # candidate cut points, fewest dropped first
    lo, hi = 0, len(starts) - 1  # starts[hi] (everything dropped) fits; find the first that does
    best, best_count = starts[hi], minimal
    while lo <= hi:
        mid = (lo + hi) // 2
        tokens = await count(build(starts[mid]))
        if tokens <= limit:
            best, best_count, hi = starts[mid], tokens, mid - 1
        else:
            lo = mid + 1
    return build(best), best_count
