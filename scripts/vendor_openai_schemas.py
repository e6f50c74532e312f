"""Vendor the Chat Completions response schemas from OpenAI's published OpenAPI specification.

    python scripts/vendor_openai_schemas.py DIR COMMIT    # DIR holds openapi.json of that commit

Reads `openapi.json` of a checkout of https://github.com/openai/openai-openapi (MIT), keeps the two
response schemas the tests validate against and every schema they reference, and writes them to
tests/openai_spec/chat_completions.json with the commit they came from. OpenAPI's `nullable: true`
(still used inside the 3.1 document) becomes JSON Schema's `"null"` type so a JSON Schema validator
reads it as the SDKs do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOTS = ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse"]
OUT = Path(__file__).resolve().parents[1] / "tests" / "openai_spec" / "chat_completions.json"


def refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value)
    return found


def nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: nullable(v) for k, v in node.items() if k not in ("description", "example", "x-stainless-const")}
        if node.pop("nullable", False):
            kind = node.get("type")
            if isinstance(kind, str):
                node["type"] = [kind, "null"]
                if "enum" in node:
                    node["enum"] = [*node["enum"], None]
            elif "$ref" in node or "anyOf" in node or "allOf" in node:
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [nullable(v) for v in node]
    return node


def main(checkout: str, commit: str) -> None:
    spec = json.loads((Path(checkout) / "openapi.json").read_text())
    schemas = spec["components"]["schemas"]
    keep: set[str] = set()
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(refs(schemas[name]) - keep)
    out = {
        "source": "https://github.com/openai/openai-openapi (openapi.json), MIT licence: LICENSE-openai-openapi",
        "commit": commit,
        "openapi_version": spec["info"]["version"],
        "components": {"schemas": {name: nullable(schemas[name]) for name in sorted(keep)}},
    }
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(keep)} schemas -> {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
