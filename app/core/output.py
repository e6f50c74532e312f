"""What shape an answer must take, beyond sampling: JSON (any object, or one matching a schema), or
calls of the tools the client offers. Every provider receives it (`Stream.stream`) and either
honours it or refuses the request (400 naming the field) before generation starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ToolChoice = Literal["none", "auto", "required"] | str  # a tool's name: that tool must be called


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str | None = None
    #: A JSON Schema of the arguments (an object schema); None: no arguments.
    parameters: dict[str, Any] | None = None

    def openai(self) -> dict[str, Any]:
        """As OpenAI's `tools` entry (what LangChain's `bind_tools` and OpenAI-compatible servers take)."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters or {"type": "object"}}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class OutputSpec:
    #: A JSON Schema the answer must match (`response_format: json_schema`).
    json_schema: dict[str, Any] | None = None
    #: The schema's name, as the client gave it.
    schema_name: str = "response"
    #: Any JSON object (`response_format: json_object`).
    json_object: bool = False
    tools: tuple[ToolSpec, ...] = field(default_factory=tuple)
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    #: Log probabilities of the answer's tokens, with this many alternatives each (0: none); None: off.
    logprobs: int | None = None

    @property
    def wants_json(self) -> bool:
        return self.json_object or self.json_schema is not None

    @property
    def offers_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)


#: Plain text: no constraint.
TEXT = OutputSpec()
