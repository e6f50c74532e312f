"""Chains on served models (unit level, with a fake chat model): they hold the model's queue slot,
are refused when its queue is full, and report who answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from app.chains import get_chain
from app.core.errors import InvalidRequest, Overloaded
from app.core.models_file import ModelSpec
from app.core.sampling import Sampling
from app.protocol.chains import ChainParams
from app.providers.registry import ModelRegistry
from app.services import chains
from app.services.generation import Generator
from app.services.served_model import ServedChatModel
from tests.fakes import fake_registry


class FakeSlotWatcher(BaseChatModel):
    """Yields 'ok'; records how many slots of its model were held while it ran."""

    registry: Any = None
    seen_active: list[int] = []
    delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "fake-slot-watcher"

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.seen_active.append(self.registry.get("m").slots.active)
        await asyncio.sleep(self.delay)
        yield ChatGenerationChunk(message=AIMessageChunk(content="ok"))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={"input_tokens": 5, "output_tokens": 1, "total_tokens": 6},
                response_metadata={"finish_reason": "stop"},
            )
        )


@pytest.fixture
def registry() -> Iterator[tuple[ModelRegistry, FakeSlotWatcher]]:
    fake = FakeSlotWatcher(seen_active=[])
    reg = fake_registry({"m": fake}, [ModelSpec(name="m", concurrency=1, queue_depth=0)])
    fake.registry = reg
    yield reg, fake


async def test_chain_holds_the_model_slot_and_reports_usage(registry: tuple[ModelRegistry, FakeSlotWatcher]) -> None:
    reg, fake = registry
    served = ServedChatModel(generator=Generator(reg), model_name="m")
    output = await get_chain("qa", served).ainvoke({"question": "q", "context": "c"})
    assert output == "ok"
    assert fake.seen_active == [1], "the chain's generation ran inside the model's queue slot"
    assert served.outcome.model == "m" and served.outcome.usage.as_dict()["total_tokens"] == 6
    assert reg.get("m").slots.active == 0


async def test_chain_is_refused_when_the_model_queue_is_full(registry: tuple[ModelRegistry, FakeSlotWatcher]) -> None:
    reg, fake = registry
    fake.delay = 0.2
    first = asyncio.create_task(
        get_chain("qa", ServedChatModel(generator=Generator(reg), model_name="m")).ainvoke({"question": "q", "context": "c"})
    )
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded):
        await get_chain("qa", ServedChatModel(generator=Generator(reg), model_name="m")).ainvoke({"question": "q", "context": "c"})
    assert await first == "ok"


async def test_request_params_reach_the_generation(registry: tuple[ModelRegistry, FakeSlotWatcher]) -> None:
    reg, _ = registry
    run = chains.ChainRun(Generator(reg), "summarize", "m", ChainParams(temperature=0, max_tokens=5))
    assert run.served.params.over(Sampling()) == {"temperature": 0, "max_tokens": 5}
    result = await chains.invoke(run, {"text": "t"})
    assert result == {
        "output": "ok",
        "model": "m",
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }


def test_input_errors_name_the_field() -> None:
    spec = get_chain("summarize")
    with pytest.raises(InvalidRequest) as info:
        chains.check_input(spec, {"text": "t", "sentences": 0}, "input")
    assert info.value.param == "input.sentences" and info.value.code == "invalid_value"
    assert chains.check_input(spec, {"text": "t"}, "input") == {"text": "t", "sentences": 3}


async def test_prompt_size_limit_applies_to_chains(registry: tuple[ModelRegistry, FakeSlotWatcher]) -> None:
    from app.core.errors import PayloadTooLarge

    reg, fake = registry
    object.__setattr__(reg.get("m").spec, "max_prompt_chars", 200)
    with pytest.raises(PayloadTooLarge):
        await get_chain("summarize", ServedChatModel(generator=Generator(reg), model_name="m")).ainvoke({"text": "x" * 300})
    assert fake.seen_active == [], "refused before reaching the model"
