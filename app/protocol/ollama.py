"""Ollama's native API shapes (https://github.com/ollama/ollama/blob/main/docs/api.md): what its
clients (the `ollama` Python and JavaScript libraries, LangChain's ChatOllama, Open WebUI, Copilot's
Ollama provider, Continue, Aider) send and read.

Served beside the native conversations API: `/api/sessions...` is Slipway's, every other `/api/...`
path is Ollama's (`is_ollama_path`), and answers its errors as Ollama does: `{"error": "..."}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.sampling import MAX_STOP_SEQUENCES, Sampling

#: The version `GET /api/version` reports: clients gate features on it (Copilot needs >= 0.6.4).
VERSION = "0.13.0"
SESSIONS_PREFIX = "/api/sessions"


#: Slipway's own routes under /api (OpenAI's error object); every other /api path is Ollama's.
OWN_PREFIXES = (SESSIONS_PREFIX, "/api/eval")


def is_ollama_path(path: str) -> bool:
    return path.startswith("/api/") and not any(path == p or path.startswith(p + "/") for p in OWN_PREFIXES)


def error_body(message: str) -> dict[str, str]:
    return {"error": message}


def timestamp() -> str:
    """RFC 3339 in UTC with nanoseconds, as Ollama writes `created_at`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


def model_name(name: str) -> str:
    """A model as Ollama clients name it back: `name:latest` for a models-file entry without a tag."""
    return name if ":" in name else f"{name}:latest"


def entry_name(name: str) -> str:
    """The models-file entry an Ollama client means (`smollm2:latest` is the entry `smollm2`)."""
    return name.removesuffix(":latest")


class OllamaModel(BaseModel):
    # Clients send fields this service has no use for (keep_alive, think, raw...): accepted.
    model_config = ConfigDict(extra="allow")


class Options(OllamaModel):
    """The runtime options Slipway maps onto a model's parameters; others are accepted and unused."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    num_predict: int | None = None
    seed: int | None = None
    stop: list[str] | None = Field(default=None, max_length=MAX_STOP_SEQUENCES)

    def sampling(self) -> Sampling:
        # Ollama's num_predict -1 (or -2) means "until the model stops": the entry's own limit applies.
        max_tokens = self.num_predict if self.num_predict is not None and self.num_predict > 0 else None
        return Sampling(
            temperature=self.temperature, top_p=self.top_p, max_tokens=max_tokens, seed=self.seed, stop=self.stop
        )


class ToolCallFunction(OllamaModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCall(OllamaModel):
    function: ToolCallFunction


class Message(OllamaModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None


class ChatRequest(OllamaModel):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(default_factory=list)
    stream: bool = True
    format: Literal["json"] | dict[str, Any] | None = None
    options: Options = Field(default_factory=Options)
    tools: list[dict[str, Any]] | None = None


class GenerateRequest(OllamaModel):
    model: str = Field(min_length=1)
    prompt: str = ""
    system: str | None = None
    stream: bool = True
    format: Literal["json"] | dict[str, Any] | None = None
    options: Options = Field(default_factory=Options)
    images: list[str] | None = None
    suffix: str | None = None


class ShowRequest(OllamaModel):
    model: str | None = None
    #: The older field name, still sent by some clients.
    name: str | None = None


def final_fields(prompt_tokens: int, completion_tokens: int, total_s: float, first_s: float) -> dict[str, Any]:
    """The closing object's counters; durations in nanoseconds, as Ollama reports them."""
    total_ns = int(total_s * 1e9)
    prompt_ns = int(min(first_s, total_s) * 1e9)
    return {
        "total_duration": total_ns,
        "load_duration": 0,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": completion_tokens,
        "eval_duration": max(0, total_ns - prompt_ns),
    }


class EmbedRequest(OllamaModel):
    """`POST /api/embed` (and the older `/api/embeddings`, which sends one `prompt`)."""

    model: str = Field(min_length=1)
    input: str | list[str] | None = None
    prompt: str | None = None
    truncate: bool = True
    dimensions: int | None = Field(default=None, ge=1, le=65536)
    options: dict[str, Any] | None = None
    keep_alive: str | int | float | None = None

    @property
    def texts(self) -> list[str]:
        if self.input is None:
            return [self.prompt or ""]
        return [self.input] if isinstance(self.input, str) else list(self.input)
