"""History that fits: whole turns dropped oldest first, the system prompt and the new message kept,
413 when even those do not fit; counted by the local model's own tokenizer, estimated for remote ones;
and which stored messages count as history."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from app.core.config import Settings
from app.core.errors import PayloadTooLarge
from app.core.models_file import ModelsFile, ModelSpec
from app.providers.registry import ModelHandle, ModelRegistry
from app.services.history import (
    DEFAULT_LOCAL_WINDOW,
    DEFAULT_REMOTE_WINDOW,
    Budget,
    budget_for,
    counter_for,
    estimate_tokens,
    fit_history,
)
from app.services.sessions import conversation
from app.storage.repo import MessageRow


class FakeCounter:
    """One token per character of content plus one per message: easy to reason about."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, messages: Sequence[BaseMessage]) -> int:
        self.calls += 1
        return sum(len(str(m.content)) + 1 for m in messages)


def turns(n: int, size: int = 9) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for i in range(n):
        out += [HumanMessage(f"q{i}".ljust(size, ".")), AIMessage(f"a{i}".ljust(size, "."))]
    return out


async def test_everything_fits_in_one_count() -> None:
    count = FakeCounter()
    history = turns(3)
    sent, tokens = await fit_history(
        system=SystemMessage("sys"),
        history=history,
        new=HumanMessage("new"),
        budget=Budget(1000, 100, True),
        count=count,
    )
    assert sent == [SystemMessage("sys"), *history, HumanMessage("new")] and count.calls == 1
    assert tokens == sum(len(str(m.content)) + 1 for m in sent)


async def test_oldest_whole_turns_go_first() -> None:
    history = turns(6)  # each message costs 10
    system, new = SystemMessage("sys"), HumanMessage("new")  # 4 each
    # room for system + new (8) + exactly 2 turns (40)
    sent, tokens = await fit_history(
        system=system, history=history, new=new, budget=Budget(48 + 50, 50, True), count=FakeCounter()
    )
    assert sent == [system, *history[-4:], new]
    assert tokens == 48
    # one token less: only one turn fits (never half a turn)
    sent, _ = await fit_history(
        system=system, history=history, new=new, budget=Budget(47 + 50, 50, True), count=FakeCounter()
    )
    assert sent == [system, *history[-2:], new]


async def test_binary_search_counts_few_times() -> None:
    count = FakeCounter()
    await fit_history(
        system=None, history=turns(200), new=HumanMessage("x"), budget=Budget(600, 100, True), count=count
    )
    assert count.calls <= 12, count.calls  # 2 probes + log2(200)


async def test_a_message_that_cannot_fit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge) as refused:
        await fit_history(
            system=SystemMessage("s" * 50),
            history=turns(2),
            new=HumanMessage("n" * 60),
            budget=Budget(150, 50, True),
            count=FakeCounter(),
        )
    assert refused.value.status_code == 413 and refused.value.code == "context_length_exceeded"


def test_estimate_for_remote_models_is_the_documented_formula() -> None:
    # 3 for the reply + per message: 4 + ceil(chars / 3)
    assert estimate_tokens([HumanMessage("abcdef")]) == 3 + 4 + 2
    assert estimate_tokens([SystemMessage("x" * 10), HumanMessage("y")]) == 3 + (4 + 4) + (4 + 1)
    english = "The quick brown fox jumps over the lazy dog. " * 20
    assert estimate_tokens([HumanMessage(english)]) >= len(english) / 4, "over-counts English on purpose"


def registry_of(*specs: ModelSpec) -> ModelRegistry:
    registry = ModelRegistry(ModelsFile(models=list(specs)), Settings())
    registry.build_all()
    return registry


def test_budgets() -> None:
    registry = registry_of(
        ModelSpec(name="remote", provider="openai", base_url="http://127.0.0.1:9/v1"),
        ModelSpec(name="remote-big", provider="openai", base_url="http://127.0.0.1:9/v1", context_window=32768),
        ModelSpec(name="local"),
    )
    assert budget_for(registry.get("remote"), None) == Budget(DEFAULT_REMOTE_WINDOW, 512, False)
    assert budget_for(registry.get("remote-big"), 1000) == Budget(32768, 1000, False)
    assert budget_for(registry.get("local"), 256) == Budget(DEFAULT_LOCAL_WINDOW, 256, True)
    assert budget_for(registry.get("local"), 100_000).answer == DEFAULT_LOCAL_WINDOW // 2, "half stays for the prompt"


@pytest.fixture(scope="module")
def local() -> Iterator[ModelHandle]:
    registry = registry_of(ModelSpec(name="local", context_window=512))
    handle = registry.get("local")
    handle.chat_model.load()  # type: ignore[union-attr]
    yield handle
    registry.close()


@pytest.mark.slow
async def test_local_models_are_counted_with_their_own_tokenizer(local: ModelHandle) -> None:
    messages = [SystemMessage("Be brief."), HumanMessage("Bonjour, je m'appelle Ada. 日本語も話せます。")]
    exact = await counter_for(local)(messages)
    ids, _ = local.chat_model.prompt_tokens(messages)  # type: ignore[union-attr]
    assert exact == len(ids), "the count is the prompt llama.cpp will evaluate, template included"
    assert exact != estimate_tokens(messages)


@pytest.mark.slow
async def test_local_history_is_cut_to_the_real_window(local: ModelHandle) -> None:
    history: list[BaseMessage] = []
    for i in range(12):
        history += [
            HumanMessage(f"Tell me fact number {i} about the sea. " * 3),
            AIMessage(f"Fact {i}: the sea is wide. " * 3),
        ]
    count = counter_for(local)
    budget = budget_for(local, 64)
    sent, tokens = await fit_history(
        system=SystemMessage("Be brief."),
        history=history,
        new=HumanMessage("And the last one?"),
        budget=budget,
        count=count,
    )
    assert tokens == await count(sent) and tokens <= budget.prompt
    assert sent[0] == SystemMessage("Be brief.") and sent[-1] == HumanMessage("And the last one?")
    kept = sent[1:-1]
    assert 0 < len(kept) < len(history) and kept == history[-len(kept) :] and isinstance(kept[0], HumanMessage)
    one_more = history[-len(kept) - 2 :]
    assert await count([sent[0], *one_more, sent[-1]]) > budget.prompt, "no further turn would have fitted"


def row(seq: int, role: str, content: str, status: str = "complete") -> MessageRow:
    return MessageRow(
        id=seq,
        session_id="s",
        seq=seq,
        role=role,
        content=content,
        status=status,
        reply_to=None,
        model=None,
        prompt_tokens=None,
        completion_tokens=None,
        latency_ms=None,
        finish_reason=None,
        error=None,
        created_at=datetime.now(UTC),
    )


def test_history_skips_turns_that_never_got_text_and_keeps_partials() -> None:
    rows = [
        row(1, "user", "first"),
        row(2, "assistant", "", "incomplete"),  # failed before any text: the turn is left out
        row(3, "user", "second"),
        row(4, "assistant", "half an ans", "incomplete"),  # the user saw this much: it stays
        row(5, "user", "third"),
        row(6, "assistant", "full answer"),
        row(7, "user", "unanswered (the answer could not be stored)"),
    ]
    assert [r.content for r in conversation(rows)] == [
        "second",
        "half an ans",
        "third",
        "full answer",
        "unanswered (the answer could not be stored)",
    ]
