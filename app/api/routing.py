"""The route class every router uses: request bodies whose text cannot be encoded are refused.

JSON may spell a lone UTF-16 surrogate (`"\\ud800"`); Python's json accepts it and the string then
fails wherever it is encoded (the tokenizer, SQLite, a log line), as a 500. Refusing it while the body
is parsed gives one 400 naming the field, whatever the route. Normal bodies pay one byte search.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


def unencodable_path(value: Any, path: tuple[str, ...] = ()) -> str | None:
    """The dotted path of the first string (or key) that is not valid Unicode text, else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return ".".join(path) or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unencodable_path(key, (*path, "<key>")) or unencodable_path(item, (*path, str(key)))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unencodable_path(item, (*path, str(index)))
            if found:
                return found
    return None


class TextOnlyRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            parsed = json.loads(body)
            if b"\\ud" in body.lower():  # only a \u escape can spell a surrogate in valid JSON
                where = unencodable_path(parsed)
                if where is not None:
                    raise json.JSONDecodeError(
                        f"'{where}' holds a lone UTF-16 surrogate, which is not text; send valid Unicode",
                        body.decode("utf-8", "replace"),
                        0,
                    )
            self._json = parsed
        return self._json


class SlipwayRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def text_only(request: Request) -> Response:
            return await handler(TextOnlyRequest(request.scope, request.receive))

        return text_only


class AnyContentTypeRoute(SlipwayRoute):
    """Ollama reads every request body as JSON whatever its Content-Type (its documented examples are
    `curl -d '{...}'`, sent as a form): so do its routes here."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def as_json(request: Request) -> Response:
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
            request.scope["headers"] = [*headers, (b"content-type", b"application/json")]
            return await handler(request)

        return as_json
