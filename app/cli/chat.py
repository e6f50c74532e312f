"""`python -m app chat`: talk to a model from the terminal (as `ollama run` does), streaming, with the
conversation kept for the session; the embedded model by default, any models-file entry by `--model`.

In-process and offline: no server needs to run. Ctrl-C stops the answer being written (and keeps
what was written in the history); Ctrl-D or `/bye` ends the chat; `/clear` forgets the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TextIO

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from app.core.config import Settings
from app.core.errors import APIError
from app.core.models_file import ModelsFile
from app.core.sampling import Sampling
from app.providers.registry import ModelRegistry
from app.services.events import Delta, StreamStarted
from app.services.generation import Generator


async def chat(
    settings: Settings,
    models_file: ModelsFile,
    model: str | None,
    *,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> int:
    registry = ModelRegistry(models_file, settings)
    handle = registry.get(model)  # 404-style error for an unknown name, before anything loads
    registry.build_all()
    stdout.write(f"loading {handle.name}...\n")
    stdout.flush()
    await registry.load_local()
    if handle.state not in ("ready",):
        stdout.write(f"{handle.name} is not available: {handle.detail or handle.state}\n")
        return 1
    history: list[BaseMessage] = [SystemMessage(handle.spec.system_prompt)] if handle.spec.system_prompt else []
    stdout.write(f"chatting with {handle.name}; Ctrl-C stops an answer, Ctrl-D or /bye ends, /clear forgets\n")
    answering: list[asyncio.Task[None]] = []

    def on_ctrl_c() -> None:
        if answering and not answering[-1].done():
            answering[-1].cancel()
        else:
            stdout.write("\n(Ctrl-D or /bye leaves)\n>>> ")
            stdout.flush()

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread / no signals here
        loop.add_signal_handler(signal.SIGINT, on_ctrl_c)
    try:
        while True:
            stdout.write(">>> ")
            stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line or line.strip() == "/bye":
                stdout.write("\n")
                return 0
            text = line.strip()
            if not text:
                continue
            if text == "/clear":
                del history[1 if history and isinstance(history[0], SystemMessage) else 0 :]
                continue
            history.append(HumanMessage(text))
            answer = await _answer(registry, handle.name, history, stdout, answering)
            history.append(AIMessage(answer))
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        await registry.aclose()
        await asyncio.to_thread(registry.close)


async def _answer(
    registry: ModelRegistry, model: str, history: list[BaseMessage], stdout: TextIO, answering: list[asyncio.Task[None]]
) -> str:
    parts: list[str] = []
    task = asyncio.ensure_future(_stream(registry, model, history, stdout, parts))
    answering[:] = [task]
    try:
        await task
    except asyncio.CancelledError:
        stdout.write(" [stopped]")
    except (APIError, StreamStarted) as exc:
        error = exc.error if isinstance(exc, StreamStarted) else exc
        stdout.write(f"\nerror: {error.message}")
    stdout.write("\n")
    stdout.flush()
    return "".join(parts)


async def _stream(
    registry: ModelRegistry, model: str, history: list[BaseMessage], stdout: TextIO, parts: list[str]
) -> None:
    async for event in Generator(registry).generate(model, list(history), Sampling()):
        if isinstance(event, Delta):
            parts.append(event.text)
            stdout.write(event.text)
            stdout.flush()
