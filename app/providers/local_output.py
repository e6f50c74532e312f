"""JSON and tool calls on the embedded model: a prompt that explains them, and a llama.cpp grammar that
makes the output match, so every JSON answer parses and validates and every tool call names an
offered tool with arguments that match its schema (streaming included).

SmolLM2's chat template has no tool format, so tools are described in a system message and a call is
written `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`; earlier calls and their results in
the history are shown the same way. With `tool_choice` `auto` the grammar allows either a call or a
plain answer (which then cannot start with `<`); `required` or a named tool allows only a call.
Grammars are built once per schema (`grammar_for`, cached).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from app.core.errors import InvalidRequest

OPEN, CLOSE = "<tool_call>", "</tool_call>"
#: Keywords llama.cpp's schema-to-grammar converter does not enforce: refused, never ignored.
UNSUPPORTED_KEYWORDS = frozenset(
    {"not", "if", "then", "else", "dependentSchemas", "patternProperties", "multipleOf", "uniqueItems",
     "minProperties", "maxProperties", "contains"}
)  # fmt: skip
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
#: An integer range with both ends becomes an enum of its values (the converter ignores bounds):
#: at most this many values.
MAX_RANGE = 2000


@dataclass(frozen=True)
class Plan:
    """How one generation is constrained: the grammar (GBNF text) and whether it may call tools."""

    grammar: str | None = None
    #: "off": text or JSON only; "auto": a call or an answer; "forced": a call.
    tools: str = "off"
    instructions: str | None = None


def plan_for(tools: list[dict[str, Any]] | None, tool_choice: Any, response_format: dict[str, Any] | None) -> Plan:
    """The plan for a request's tools (OpenAI's format), tool choice and response format."""
    if tools and tool_choice != "none":
        offered = [t["function"] for t in tools]
        forced = tool_choice not in (None, "auto")
        if isinstance(tool_choice, dict | str) and tool_choice not in ("auto", "required"):
            name = tool_choice["function"]["name"] if isinstance(tool_choice, dict) else tool_choice
            offered = [f for f in offered if f["name"] == name]
        grammar = _tools_grammar(json.dumps(offered, sort_keys=True), forced)
        return Plan(grammar=grammar, tools="forced" if forced else "auto", instructions=_instructions(offered, forced))
    if response_format is None or response_format.get("type") in (None, "text"):
        return Plan()
    schema = response_format.get("schema") if response_format.get("type") == "json_schema" else None
    return Plan(grammar=grammar_for(json.dumps(lowered(schema), sort_keys=True) if schema is not None else None))


def lowered(schema: Any) -> Any:
    """The schema with what the converter would ignore made explicit: bounded integers as enums."""
    if isinstance(schema, list):
        return [lowered(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: lowered(v) for k, v in schema.items()}
    if out.get("type") == "integer" and any(b in out for b in BOUNDS):
        low, high = _range(out)
        if low is not None and high is not None and 0 <= high - low < MAX_RANGE:
            rest = {k: v for k, v in out.items() if k not in (*BOUNDS, "type")}
            return {**rest, "enum": list(range(low, high + 1))}
    return out


def _range(node: dict[str, Any]) -> tuple[int | None, int | None]:
    import math

    low = node.get("minimum")
    if "exclusiveMinimum" in node:
        low = math.floor(node["exclusiveMinimum"]) + 1
    high = node.get("maximum")
    if "exclusiveMaximum" in node:
        high = math.ceil(node["exclusiveMaximum"]) - 1
    return (math.ceil(low) if low is not None else None, math.floor(high) if high is not None else None)


def check_schema(schema: dict[str, Any], where: str) -> None:
    """400 naming the first keyword the grammar cannot enforce (rather than output that may not match)."""
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found = sorted(UNSUPPORTED_KEYWORDS.intersection(node))
            bounded = [b for b in BOUNDS if b in node]
            if bounded and "enum" not in lowered(node):
                found.append(bounded[0])
            if found:
                why = f" (bounds hold on integers with both ends, at most {MAX_RANGE} values apart)" if bounded else ""
                raise InvalidRequest(
                    f"JSON Schema keyword {found[0]!r} cannot be enforced by the local model's grammar{why}",
                    param=where,
                    code="unsupported_schema",
                )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    try:
        grammar_for(json.dumps(lowered(schema), sort_keys=True))
    except Exception as exc:
        raise InvalidRequest(
            f"the JSON Schema cannot be turned into a grammar: {exc}", param=where, code="unsupported_schema"
        ) from None


@lru_cache(maxsize=128)
def grammar_for(schema_json: str | None) -> str:
    """GBNF for any JSON object (None) or for values matching a schema."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if schema_json is None:
        return JSON_GBNF
    # The converter's strings admit raw control characters (a newline inside a string), which strict
    # JSON parsers (Python's, pydantic's) refuse: excluded, as JSON_GBNF does.
    return json_schema_to_gbnf(schema_json).replace('char ::= [^"\\\\]', 'char ::= [^"\\\\\\x7F\\x00-\\x1F]')


@lru_cache(maxsize=128)
def _tools_grammar(functions_json: str, forced: bool) -> str:
    functions = json.loads(functions_json)
    calls = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "name": {"const": f["name"]},
                    "arguments": lowered(f.get("parameters") or {"type": "object"}),
                },
                "required": ["name", "arguments"],
            }
            for f in functions
        ]
    }
    call = grammar_for(json.dumps(calls, sort_keys=True)).replace("root ::=", "call ::=", 1)
    head = f'root ::= "{OPEN}" call "{CLOSE}"'
    if not forced:
        head += " | answer\nanswer ::= [^<] [^\\x00]*"
    return head + "\n" + call


def _instructions(functions: list[dict[str, Any]], forced: bool) -> str:
    lines = ["You can call these tools:"]
    for f in functions:
        params = json.dumps(f.get("parameters") or {"type": "object"})
        lines.append(f"- {f['name']}: {f.get('description') or 'no description'}. Arguments (JSON Schema): {params}")
    lines.append(
        f'To call a tool, reply with only {OPEN}{{"name": "<tool name>", "arguments": {{...}}}}{CLOSE}.'
        + ("" if forced else " Otherwise answer normally.")
    )
    return "\n".join(lines)


def prompt_messages(messages: list[BaseMessage], plan: Plan) -> list[BaseMessage]:
    """The messages as the model sees them: the tools explained, calls and results written out."""
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            calls = "".join(
                OPEN + json.dumps({"name": c["name"], "arguments": c["args"]}) + CLOSE for c in message.tool_calls
            )
            out.append(AIMessage((message.text or "") + calls))
        elif isinstance(message, ToolMessage):
            out.append(ToolMessage(message.text, tool_call_id=message.tool_call_id))
        else:
            out.append(message)
    if plan.instructions:
        if out and isinstance(out[0], SystemMessage):
            out[0] = SystemMessage(f"{out[0].text}\n\n{plan.instructions}")
        else:
            out.insert(0, SystemMessage(plan.instructions))
    return out


def parse_call(text: str) -> dict[str, Any] | None:
    """`<tool_call>{...}</tool_call>` as a LangChain tool-call chunk; None if it is not one (cut short)."""
    text = text.strip()
    if not (text.startswith(OPEN) and text.endswith(CLOSE)):
        return None
    try:
        call = json.loads(text[len(OPEN) : -len(CLOSE)])
    except ValueError:
        return None
    return {
        "name": call["name"],
        "args": json.dumps(call.get("arguments", {})),
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "index": 0,
    }
