"""The web pages: the chat at `/`, the chain playground at `/playground`, evaluation runs at `/runs`;
static files, no build step.

The page talks to the public API only (`/v1/models`, `/api/sessions`, the session WebSocket), so it
needs no routes of its own and no privileges a tester's key does not have. Its security headers (a
strict Content-Security-Policy: scripts from this origin only) come from `app.middleware.headers`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"


router = APIRouter(include_in_schema=False)
#: Mounted by `create_app` at /static.
static = StaticFiles(directory=STATIC)


@router.get("/", response_model=None)
async def index(request: Request) -> Response:
    """The web page for a browser (a request that accepts HTML); "Ollama is running" for everything
    else, which is how Ollama clients (Continue, Aider, Open Interpreter) probe a server at `/`."""
    if "text/html" not in request.headers.get("accept", ""):
        return PlainTextResponse("Ollama is running")
    # no-cache: a new release's page is picked up at once (it is a few kB).
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/playground")
async def playground() -> FileResponse:
    """The chain playground: a form per chain of /v1/chains, invoke or stream, the call as curl/Python."""
    return FileResponse(STATIC / "playground.html", headers={"Cache-Control": "no-cache"})


@router.get("/runs")
async def runs() -> FileResponse:
    """Evaluation runs: metrics with intervals, a trend per metric, reports, a comparison of two runs."""
    return FileResponse(STATIC / "runs.html", headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    # Browsers ask for /favicon.ico whatever the page says: an SVG answers them (no 404 in the log).
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})
