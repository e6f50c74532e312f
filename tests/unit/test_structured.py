"""Structured output pieces that need no model: tool-call fragments merged and normalised, schemas
lowered to what the grammar enforces, unenforceable keywords refused, calls parsed."""

from __future__ import annotations

import json

import pytest

from app.core.errors import InvalidRequest
from app.providers.local_output import check_schema, grammar_for, lowered, parse_call, plan_for
from app.services.tool_calls import ToolCalls


def test_fragments_merge_by_index_and_the_first_carries_id_type_and_name() -> None:
    calls = ToolCalls()
    streamed = calls.add([{"index": 0, "function": {"name": "f", "arguments": '{"a"'}}])
    streamed += calls.add(
        [{"index": 0, "function": {"arguments": ": 1}"}}, {"index": 1, "id": "x", "function": {"name": "g"}}]
    )
    first = streamed[0]
    assert first["id"].startswith("call_") and first["type"] == "function" and first["function"]["name"] == "f"
    assert streamed[1] == {"index": 0, "function": {"arguments": ": 1}"}}
    assert streamed[2]["id"] == "x" and streamed[2]["function"] == {"name": "g", "arguments": ""}
    result = calls.result()
    assert result is not None
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in result] == [("f", '{"a": 1}'), ("g", "{}")]
    assert ToolCalls().result() is None


def test_bounded_integers_become_enums_and_unenforceable_keywords_are_refused() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "exclusiveMaximum": 4}}}
    assert lowered(schema)["properties"]["n"] == {"enum": [1, 2, 3]}
    check_schema(schema, "where")
    for bad, keyword in (
        ({"type": "number", "maximum": 3}, "maximum"),
        ({"type": "integer", "minimum": 0}, "minimum"),
        ({"type": "integer", "minimum": 0, "maximum": 10**6}, "minimum"),
        ({"type": "array", "uniqueItems": True}, "uniqueItems"),
        ({"not": {"type": "string"}}, "not"),
    ):
        with pytest.raises(InvalidRequest) as info:
            check_schema({"type": "object", "properties": {"x": bad}}, "response_format.json_schema.schema")
        assert repr(keyword) in info.value.message and info.value.param == "response_format.json_schema.schema"


def test_strings_in_grammars_exclude_raw_control_characters() -> None:
    """Strict JSON parsers (Python's, pydantic's) refuse a raw newline inside a string."""
    grammar = grammar_for(json.dumps({"type": "string"}))
    assert "\\x00-\\x1F" in grammar.split("char ::=", 1)[1].splitlines()[0]


def test_tool_plans() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert plan_for(tools, "none", None).grammar is None
    auto = plan_for(tools, "auto", None)
    assert auto.tools == "auto" and "answer ::=" in (auto.grammar or "")
    forced = plan_for(tools, {"type": "function", "function": {"name": "f"}}, None)
    assert forced.tools == "forced" and "answer" not in (forced.grammar or "")
    call = parse_call('<tool_call>{"name": "f", "arguments": {"a": 1}}</tool_call>')
    assert call is not None and call["name"] == "f" and json.loads(call["args"]) == {"a": 1}
    assert parse_call('<tool_call>{"name": "f", "argu') is None
