"""Evaluation datasets: JSONL (`{"id", "messages"|"prompt", "reference", "metadata"}`) or CSV
(`prompt`, `reference` columns). Every invalid line is reported with file and line; nothing runs."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class DatasetError(Exception):
    """Invalid dataset: the message lists `file:line: problem` for each bad line."""


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    messages: list[Message] | None = None
    prompt: str | None = None
    reference: list[str] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    input: dict[str, Any] | None = Field(default=None, description="Chain input, for --chain runs.")

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("reference"), str):
                data["reference"] = [data["reference"]]
            if isinstance(data.get("id"), int):
                data["id"] = str(data["id"])
        return data

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        if not self.messages and not self.prompt and not self.input:
            raise ValueError("needs `messages` or `prompt`")
        return self

    def chat_messages(self) -> list[dict[str, str]]:
        if self.messages:
            return [m.model_dump() for m in self.messages]
        return [{"role": "user", "content": self.prompt or ""}]

    @property
    def prompt_text(self) -> str:
        if self.prompt:
            return self.prompt
        users = [m.content for m in self.messages or [] if m.role == "user"]
        return users[-1] if users else ""


def _problem(exc: ValidationError) -> str:
    item = exc.errors()[0]
    where = ".".join(str(p) for p in item["loc"])
    return f"{where + ': ' if where else ''}{item['msg'].removeprefix('Value error, ')}"


def load_dataset(path: str | Path) -> list[Case]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: not found")
    problems: list[str] = []
    cases: list[Case] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"prompt", "reference"} - set(reader.fieldnames or [])
            if missing:
                raise DatasetError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
            for index, row in enumerate(reader):
                line = index + 2
                try:
                    cases.append(
                        Case(id=row.get("id") or str(index + 1), prompt=row["prompt"], reference=row["reference"])
                    )
                except ValidationError as exc:
                    problems.append(f"{path}:{line}: {_problem(exc)}")
    else:
        for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{line}: invalid JSON ({exc.msg})")
                continue
            if not isinstance(data, dict):
                problems.append(f"{path}:{line}: expected a JSON object")
                continue
            try:
                cases.append(Case.model_validate(data))
            except ValidationError as exc:
                problems.append(f"{path}:{line}: {_problem(exc)}")
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"{path}: duplicate ids: {', '.join(dupes[:10])}")
    if problems:
        raise DatasetError("\n".join(problems))
    if not cases:
        raise DatasetError(f"{path}: no cases")
    return cases


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def append_cases(source_text: str, source_name: str, dataset: Path) -> tuple[int, int]:
    """Append JSONL cases (a conversation export from `/api/sessions/{id}/export`, or any file in this
    format) to `dataset`, skipping ids it already holds; every line is checked first and nothing is
    written if one is bad. Returns (added, already there)."""
    tmp_problems: list[str] = []
    incoming: list[dict[str, Any]] = []
    for line, text in enumerate(source_text.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
            incoming.append(Case.model_validate(data).model_dump(mode="json", exclude_none=True))
        except json.JSONDecodeError as exc:
            tmp_problems.append(f"{source_name}:{line}: invalid JSON ({exc.msg})")
        except ValidationError as exc:
            tmp_problems.append(f"{source_name}:{line}: {_problem(exc)}")
    if tmp_problems:
        raise DatasetError("\n".join(tmp_problems))
    if not incoming:
        raise DatasetError(f"{source_name}: no cases")
    held = {c.id for c in load_dataset(dataset)} if dataset.is_file() and dataset.stat().st_size else set()
    new = [c for c in incoming if c["id"] not in held]
    if new:
        text = dataset.read_text(encoding="utf-8") if dataset.is_file() else ""
        with dataset.open("a", encoding="utf-8") as fh:
            if text and not text.endswith("\n"):
                fh.write("\n")
            for case in new:
                fh.write(json.dumps(case, ensure_ascii=False) + "\n")
    return len(new), len(incoming) - len(new)
