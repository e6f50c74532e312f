"""GET /api/eval/runs (the runs under SLIPWAY_EVAL_RUNS_DIR and on SLIPWAY_EVAL_MLFLOW_URI, with their
metrics and intervals),
GET /api/eval/runs/{id}/report (its report.html, as a download), GET /api/eval/compare?a=&b= (B minus A,
paired bootstrap): read-only, behind the same auth as the rest of /api."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from app.api.deps import EvalRunsDep
from app.api.routing import SlipwayRoute

router = APIRouter(prefix="/api/eval", tags=["evaluation"], route_class=SlipwayRoute)


@router.get("/runs")
async def list_runs(runs: EvalRunsDep) -> dict[str, Any]:
    return await runs.listing()


@router.get(
    "/runs/{run_id}/report",
    response_model=None,
    responses={
        200: {"description": "The run's report.html, as an attachment.", "content": {"text/html": {}}},
        404: {"description": "No such run, no report in it, or no runs folder configured."},
    },
)
async def run_report(run_id: str, runs: EvalRunsDep) -> Response:
    report = await runs.report_bytes(run_id)
    filename = f"{run_id}-report.html"
    if isinstance(report, Path):
        return FileResponse(report, media_type="text/html", filename=filename)
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(report, media_type="text/html", headers=disposition)


@router.get(
    "/compare",
    responses={
        400: {"description": "The two runs cannot be paired (different cases or references)."},
        404: {"description": "No such run, or no runs folder configured."},
    },
)
async def compare_runs(
    runs: EvalRunsDep,
    a: Annotated[str, Query(min_length=1, max_length=200, description="The baseline run's id.")],
    b: Annotated[str, Query(min_length=1, max_length=200, description="The run compared with it.")],
) -> dict[str, Any]:
    return await runs.compare(a, b)
