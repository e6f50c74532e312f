"""The models file: which models clients may ask for, and how each is served.

A bad file must stop start-up with a message naming the file, the entry and the problem, never a
traceback: `load_models_file` raises `ModelsFileError` with exactly that text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from app.core.sampling import Sampling


class ProviderCatalog(Protocol):
    """What the file is checked against: the providers the service has (`app.providers.registry`),
    so the providers' names, default models and rules live with the providers, not here."""

    def names(self) -> list[str]: ...

    def resolve(self, spec: ModelSpec) -> None:
        """Check the entry against its provider's rules (ValueError) and fill in its defaults."""


class GenerationParams(Sampling):
    """Defaults a model entry applies when the request leaves them out."""


class ModelSpec(BaseModel):
    """One entry of the models file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="What a client sends as `model`.")
    description: str | None = Field(
        default=None, max_length=300, description="One line for people choosing a model (the web page shows it)."
    )
    provider: str = "local"
    #: `chat` answers messages; `embedding` turns texts into vectors (`/v1/embeddings`, `/api/embed`).
    kind: Literal["chat", "embedding"] = "chat"
    model: str | None = Field(default=None, description="The provider's own model id.")
    path: Path | None = Field(default=None, description="local only: a GGUF file; null = the packaged model.")
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, description="Name of the variable holding the key.")
    system_prompt: str | None = None
    params: GenerationParams = Field(default_factory=GenerationParams)
    fallbacks: list[str] = Field(default_factory=list)
    retries: int = Field(default=0, ge=0, le=10)
    timeout_s: float | None = Field(default=None, gt=0, description="Total time for one request.")
    first_token_timeout_s: float | None = Field(default=None, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    queue_depth: int | None = Field(default=None, ge=0, description="Requests that may wait for a slot.")
    concurrency: int | None = Field(default=None, ge=1, description="Generations at once (local: 1).")
    context_window: int | None = Field(default=None, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    max_tokens_cap: int | None = Field(default=None, ge=1)
    # A default cap: templating and tokenising 10,000 tiny messages took 10 s of the model's only slot.
    max_messages: int | None = Field(default=1000, ge=1)
    max_prompt_chars: int | None = Field(default=None, ge=1)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str, info: ValidationInfo) -> str:
        catalog = _catalog(info)
        if catalog is not None and value not in catalog.names():
            names = catalog.names()
            raise ValueError(f"Input should be {', '.join(repr(n) for n in names[:-1])} or {names[-1]!r}")
        return value

    @model_validator(mode="after")
    def _check_entry(self, info: ValidationInfo) -> ModelSpec:
        if self.name in self.fallbacks:
            raise ValueError("a model cannot be its own fallback")
        catalog = _catalog(info)
        if catalog is not None:
            catalog.resolve(self)
        return self

    @property
    def upstream_model(self) -> str:
        """The id sent to the provider (its default model is filled in when the file is loaded)."""
        return self.model or self.name


def _catalog(info: ValidationInfo) -> ProviderCatalog | None:
    context = info.context
    return context.get("providers") if isinstance(context, Mapping) else None


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_model: str | None = None
    models: list[ModelSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_names(self) -> ModelsFile:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate model names: {', '.join(duplicates)}")
        kinds = {m.name: m.kind for m in self.models}
        for spec in self.models:
            unknown = [f for f in spec.fallbacks if f not in kinds]
            if unknown:
                raise ValueError(f"model {spec.name!r} lists unknown fallbacks: {', '.join(unknown)}")
            other = [f for f in spec.fallbacks if kinds[f] != spec.kind]
            if other:
                raise ValueError(
                    f"model {spec.name!r} ({spec.kind}) lists fallbacks of another kind: {', '.join(other)}"
                )
        chat = [m.name for m in self.models if m.kind == "chat"]
        if not chat:
            raise ValueError("list at least one chat model (`kind: chat`, the default)")
        if self.default_model is None:
            self.default_model = chat[0]
        elif self.default_model not in kinds:
            raise ValueError(f"default_model {self.default_model!r} is not one of the listed models")
        elif kinds[self.default_model] != "chat":
            raise ValueError(f"default_model {self.default_model!r} is an embedding model; name a chat model")
        return self


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer in one or two short sentences."


def default_models_file() -> ModelsFile:
    """With no file, the packaged local model is served alone."""
    return ModelsFile(
        default_model="smollm2",
        models=[
            ModelSpec(
                name="smollm2",
                provider="local",
                description="SmolLM2 135M, embedded: answers at once on any machine, briefly and often wrongly.",
                system_prompt=DEFAULT_SYSTEM_PROMPT,
                params=GenerationParams(temperature=0.2, max_tokens=256),
            )
        ],
    )


class ModelsFileError(Exception):
    """A models file that cannot be served; the message is meant for a human, as is."""


def _describe(error: ValidationError, raw: Any) -> str:
    lines = []
    for item in error.errors():
        loc = list(item["loc"])
        where = "top level"
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            index = loc[1]
            entry_name = None
            if isinstance(raw, dict) and isinstance(raw.get("models"), list) and index < len(raw["models"]):
                entry = raw["models"][index]
                entry_name = entry.get("name") if isinstance(entry, dict) else None
            where = f"entry #{index + 1}" + (f" ({entry_name!r})" if entry_name else "")
            field = ".".join(str(p) for p in loc[2:])
        else:
            field = ".".join(str(p) for p in loc)
        message = item["msg"].removeprefix("Value error, ") + _did_you_mean(item, loc)
        lines.append(f"  {where}: {field + ': ' if field else ''}{message}")
    return "\n".join(lines)


def _did_you_mean(item: Any, loc: list[Any]) -> str:
    """For a misspelt field (`temprature`) or value (`olama`), the closest right one."""
    import difflib

    if item["type"] == "extra_forbidden":
        inside = [p for p in loc if isinstance(p, str)]
        model: type[BaseModel] = ModelsFile
        if inside[:1] == ["models"]:
            model = GenerationParams if "params" in inside[1:-1] else ModelSpec
        choices = list(model.model_fields)
        word = str(inside[-1]) if inside else ""
    elif item["msg"].startswith("Value error, Input should be ") and isinstance(item.get("input"), str):
        expected = item["msg"].removeprefix("Value error, Input should be ")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",")]
        word = item["input"]
    else:
        return ""
    close = difflib.get_close_matches(word, [c for c in choices if c], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_models_file(path: Path | None, providers: ProviderCatalog) -> ModelsFile:
    """Read and validate the models file against the service's providers; `None` gives the packaged
    default."""
    if path is None:
        return ModelsFile.model_validate(default_models_file().model_dump(), context={"providers": providers})
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelsFileError(f"models file {path}: not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ModelsFileError(f"models file {path}: invalid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ModelsFileError(f"models file {path}: expected a mapping with `models:`, got {type(raw).__name__}")
    try:
        return ModelsFile.model_validate(raw, context={"providers": providers})
    except ValidationError as exc:
        raise ModelsFileError(f"models file {path} is invalid:\n{_describe(exc, raw)}") from None
