"""Tool calls as OpenAI clients expect them, whatever the provider sent: fragments merged by `index`
into whole calls (a non-streamed answer), and streamed fragments normalised so the first of each call
carries its `id`, `type` and `function.name` (what the SDKs' stream helpers accumulate on)."""

from __future__ import annotations

import uuid
from typing import Any


class ToolCalls:
    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}

    def add(self, fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Take a delta's fragments; return them as they should be streamed."""
        out = []
        for position, fragment in enumerate(fragments):
            index = fragment.get("index", position)
            function = fragment.get("function") or {}
            arguments = function.get("arguments") or ""
            call = self.calls.get(index)
            if call is None:
                call = self.calls[index] = {
                    "id": fragment.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": function.get("name") or "", "arguments": ""},
                }
                head = {"name": call["function"]["name"], "arguments": arguments}
                out.append({"index": index, "id": call["id"], "type": "function", "function": head})
            else:
                if function.get("name") and not call["function"]["name"]:
                    call["function"]["name"] = function["name"]
                out.append({"index": index, "function": {"arguments": arguments}})
            call["function"]["arguments"] += arguments
        return out

    def result(self) -> list[dict[str, Any]] | None:
        """The whole calls, in index order; arguments `{}` when a call had none."""
        if not self.calls:
            return None
        calls = [self.calls[i] for i in sorted(self.calls)]
        for call in calls:
            call["function"]["arguments"] = call["function"]["arguments"] or "{}"
        return calls
