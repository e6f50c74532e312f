"""The route class every router uses: request bodies whose text cannot be encoded are refused, and a
well-formed JSON body reaches a simple route without FastAPI's per-request machinery.

JSON may spell a lone UTF-16 surrogate (`"\\ud800"`); Python's json accepts it and the string then
fails wherever it is encoded (the tokenizer, SQLite, a log line), as a 500. Refusing it while the body
is parsed gives one 400 naming the field, whatever the route. Normal bodies pay one byte search.

The direct handler (issue #18): FastAPI's request handler (content-type parsing through `email`, the
dependency solver, its exit stacks) was the largest framework cost per request in the gateway's profile
(`solve_dependencies` alone about 210 us under the sampler). A route whose parameters are one JSON body
model, the request and `app.api.deps.part` pickers is called directly when its body is JSON that
parses and validates; anything else (another content type, bad JSON, a body that fails validation)
goes through FastAPI's own handler on the same bytes, so every error stays exactly FastAPI's.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

import fastapi.routing
import orjson
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
#: Content types the direct handler takes (anything else: FastAPI decides, as it always did).
JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"})


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


def direct_handler(dependant: Dependant, body_model: Any, fallback: Handler, overrides: Any = None) -> Handler | None:
    """A handler calling the endpoint itself for a valid JSON body, or None when the route is not simple.

    Simple: no path, query, header or cookie parameters, one body parameter whose type is a pydantic
    model, and dependencies that are all `part` pickers (`.pick(services)`), resolved here from the
    app's container. orjson parses (it refuses what it cannot represent: NaN, lone surrogates, huge
    integers; those bodies take the fallback, which parses as FastAPI does); the model validates in
    Python mode on the parsed object, as FastAPI's body field does.
    """
    call = dependant.call
    if (
        call is None
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or len(dependant.body_params) != 1
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or not (isinstance(body_model, type) and issubclass(body_model, BaseModel))
        or not inspect.iscoroutinefunction(call)
        or not _returns_response(call)
    ):
        return None
    pickers: list[tuple[str, Callable[[Any], Any]]] = []
    for sub in dependant.dependencies:
        pick = getattr(sub.call, "pick", None)
        if pick is None or sub.name is None:
            return None
        pickers.append((sub.name, pick))
    body_name = dependant.body_params[0].name
    request_name = dependant.request_param_name or dependant.http_connection_param_name
    validate = body_model.model_validate

    async def direct(request: Request) -> Response:
        if overrides is not None and getattr(overrides, "dependency_overrides", None):
            return await fallback(request)  # a test overriding a dependency: FastAPI resolves it
        content_type = next((v for k, v in request.scope["headers"] if k == b"content-type"), None)
        if content_type is None or content_type.lower() not in JSON_TYPES:
            return await fallback(request)
        raw = await request.body()
        try:
            value = validate(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValidationError):
            return await fallback(request)  # the same bytes, FastAPI's own parse and errors
        services = request.app.state.services
        values: dict[str, Any] = {name: pick(services) for name, pick in pickers}
        values[body_name] = value
        if request_name:
            values[request_name] = request
        response: Response = await call(**values)
        return response

    return direct


def _returns_response(call: Callable[..., Any]) -> bool:
    """The endpoint returns a Response itself (FastAPI would otherwise serialise what it returns)."""
    try:
        returned = get_type_hints(call).get("return")
    except Exception:  # an annotation that does not resolve: leave the route to FastAPI
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def _effective(route: APIRoute) -> Any:
    """The route as included (its router's prefix and dependencies added): FastAPI >= 0.16x builds an
    included route's handler with that context in a context variable, as `APIRoute.get_route_handler`
    reads it."""
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = context_var.get() if context_var is not None else None
    return context if context is not None and getattr(context, "original_route", None) is route else route


class SlipwayRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        route = _effective(self)
        body = route.body_field.field_info.annotation if route.body_field is not None else None
        simple = route.response_model is None and not route._embed_body_fields
        direct = direct_handler(route.dependant, body, handler, route.dependency_overrides_provider) if simple else None
        chosen = direct or handler

        async def text_only(request: Request) -> Response:
            return await chosen(TextOnlyRequest(request.scope, request.receive))

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
