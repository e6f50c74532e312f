"""The generation pipeline with fake chat models (unit level; the real model is in integration tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from app.core.errors import Overloaded, ServiceUnavailable
from app.core.models_file import ModelSpec
from app.core.sampling import Sampling
from app.protocol.openai import ChatCompletionRequest
from app.providers.registry import ModelRegistry
from app.services import completions
from app.services.events import Delta, Finished, StreamStarted
from app.services.generation import Generator
from tests.fakes import fake_registry


class FakeChatModel(BaseChatModel):
    """Yields `tokens`; raises `fail_with` after `fail_after` tokens (None = never)."""

    tokens: list[str] = ["Hello", " world"]
    fail_after: int | None = None
    fail_with: Any = None
    delay: float = 0.0
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        raise NotImplementedError

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.calls += 1
        for i, token in enumerate(self.tokens):
            if self.fail_after is not None and i == self.fail_after:
                raise self.fail_with
            await asyncio.sleep(self.delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": 3,
                    "output_tokens": len(self.tokens),
                    "total_tokens": 3 + len(self.tokens),
                },
                response_metadata={"finish_reason": "stop"},
            )
        )


def registry_with(models: dict[str, FakeChatModel], specs: list[ModelSpec]) -> ModelRegistry:
    return fake_registry(dict(models), specs)


def generate(reg: ModelRegistry, model: str, messages: list[BaseMessage], params: Sampling) -> AsyncIterator[Any]:
    return Generator(reg).generate(model, messages, params)


MESSAGES = [HumanMessage("hi")]


async def test_fallback_before_first_token_names_the_answering_model() -> None:
    primary = FakeChatModel(fail_after=0, fail_with=ConnectionRefusedError("refused"))
    backup = FakeChatModel(tokens=["ok"])
    reg = registry_with(
        {"a": primary, "b": backup},
        [ModelSpec(name="a", fallbacks=["b"], retries=1), ModelSpec(name="b")],
    )
    events = [e async for e in generate(reg, "a", MESSAGES, Sampling())]
    assert [e.text for e in events if isinstance(e, Delta)] == ["ok"]
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.model == "b" and finished.fallback_from == "a"
    assert primary.calls == 2, "one retry on the primary before the fallback"


async def test_failure_after_first_token_has_no_fallback() -> None:
    primary = FakeChatModel(tokens=["a", "b", "c"], fail_after=1, fail_with=ConnectionResetError("reset"))
    backup = FakeChatModel(tokens=["never"])
    reg = registry_with({"a": primary, "b": backup}, [ModelSpec(name="a", fallbacks=["b"]), ModelSpec(name="b")])
    got = []
    with pytest.raises(StreamStarted) as info:
        async for event in generate(reg, "a", MESSAGES, Sampling()):
            got.append(event)
    assert [e.text for e in got] == ["a"]
    assert backup.calls == 0
    assert info.value.error.status_code == 503


async def test_openai_stream_ends_with_error_event_then_done() -> None:
    primary = FakeChatModel(tokens=["a", "b", "c"], fail_after=2, fail_with=ConnectionResetError("reset"))
    reg = registry_with({"a": primary}, [ModelSpec(name="a")])
    req = ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}], stream=True)
    service = completions.Completions(Generator(reg))
    stream = service.stream(service.prepare(req))
    await stream.first(1.0)
    lines = [line async for line in stream.body()]
    assert lines[-1] == b"data: [DONE]\n\n"
    error = orjson.loads(lines[-2].removeprefix(b"data: "))
    assert set(error["error"]) == {"message", "type", "param", "code"}
    contents = [orjson.loads(x[6:])["choices"][0]["delta"].get("content") for x in lines[:-2]]
    assert contents == ["", "a", "b"]


async def test_unreachable_before_first_token_raises_503() -> None:
    reg = registry_with({"a": FakeChatModel(fail_after=0, fail_with=ConnectionRefusedError())}, [ModelSpec(name="a")])
    with pytest.raises(ServiceUnavailable):
        [e async for e in generate(reg, "a", MESSAGES, Sampling())]


async def test_full_queue_is_refused_at_once() -> None:
    slow = FakeChatModel(tokens=["x"] * 5, delay=0.05)
    spec = ModelSpec(name="a", concurrency=1, queue_depth=1)
    reg = registry_with({"a": slow}, [spec])

    async def run() -> str:
        events = [e async for e in generate(reg, "a", MESSAGES, Sampling())]
        return "".join(e.text for e in events if isinstance(e, Delta))

    first = asyncio.create_task(run())
    await asyncio.sleep(0.01)
    second = asyncio.create_task(run())
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded) as info:
        await run()
    assert info.value.status_code == 429 and int(info.value.headers["Retry-After"]) >= 1
    assert await first == "xxxxx" and await second == "xxxxx"


async def test_first_token_timeout_is_504_and_stops_the_model() -> None:
    slow = FakeChatModel(tokens=["x"], delay=5)
    spec = ModelSpec(name="a", first_token_timeout_s=0.05)
    reg = registry_with({"a": slow}, [spec])
    from app.core.errors import UpstreamTimeout

    with pytest.raises(UpstreamTimeout) as info:
        [e async for e in generate(reg, "a", MESSAGES, Sampling())]
    assert info.value.status_code == 504
    assert reg.get("a").slots.active == 0
