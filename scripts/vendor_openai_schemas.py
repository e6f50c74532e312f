"""Vendor the response schemas the API tests validate against from OpenAI's published OpenAPI specification.

    python scripts/vendor_openai_schemas.py DIR COMMIT    # DIR holds openapi.json of that commit

Reads `openapi.json` of a checkout of https://github.com/openai/openai-openapi (MIT), keeps the
response schemas of each file in `FILES` and every schema they reference, and writes them to
tests/openai_spec/<file>.json with the commit they came from. OpenAPI's `nullable: true`
(still used inside the 3.1 document) becomes JSON Schema's `"null"` type so a JSON Schema validator
reads it as the SDKs do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: The Responses events are named one by one (the spec's `ResponseStreamEvent` is a union of every
#: event of every tool, which is slow to validate against and says less when a check fails).
RESPONSE_EVENTS = [
    "ResponseCreatedEvent",
    "ResponseInProgressEvent",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseCompletedEvent",
    "ResponseIncompleteEvent",
    "ResponseFailedEvent",
    "ResponseErrorEvent",
]
FILES = {
    "chat_completions.json": ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse"],
    "responses.json": ["Response", "ResponseItemList", *RESPONSE_EVENTS],
    "embeddings.json": ["CreateEmbeddingResponse"],
}
SPEC_DIR = Path(__file__).resolve().parents[1] / "tests" / "openai_spec"


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
    for name, roots in FILES.items():
        write(spec, roots, SPEC_DIR / name, commit)


def write(spec: dict[str, Any], roots: list[str], out_path: Path, commit: str) -> None:
    schemas = spec["components"]["schemas"]
    keep: set[str] = set()
    todo = list(roots)
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
    out_path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(keep)} schemas -> {out_path}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
