"""/v1/rollups: published rollups of a year, their runs and provenance; refreshes.
/v1/phase-rollups: published rollups of a phase."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel

from nscl_api.conditional import sends
from nscl_api.deps import JobsRunner, RollupsReader, UowDep
from nscl_api.errors import responses
from nscl_api.exports import (
    SUMMARY_COLUMNS,
    ExportFormat,
    FormatQuery,
    Table,
    export_language,
    export_response,
    export_responses,
    negotiate,
    summary_rows,
    table_of,
)
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.jobs.schemas import JOB_QUEUED, JobRead
from nscl_api.reports.schemas import TimelinessRow
from nscl_api.resources import Resources
from nscl_api.rollups.published import NotModified
from nscl_api.rollups.schemas import (
    BudgetRow,
    BudgetTotalRow,
    CellRead,
    PlanProgressRow,
    ProvenanceRead,
    RollupPhaseRead,
    RollupRead,
    RollupRequest,
    RollupTargetRead,
    RunDetailRead,
    RunsRead,
    TaskRow,
)
from nscl_domain.errors import FieldProblem, Invalid, NotFound
from nscl_domain.identity import Permission
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups.views import Filters

# No prefix of its own: a phase's rollup lives beside the years' under a literal segment of its
# own. Under /v1/rollups/{programme}/phases/{phase} it was matched by the year routes first
# (`/{programme}/{year}/runs` takes a phase named `runs`), and clients could not tell which.
router = APIRouter(prefix="/v1", tags=["rollups"])
Year = Annotated[int, Path(ge=2000, le=2100)]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=200)]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Unchanged since the ETag given."}
}
JSON = "application/json"
# Polled with If-None-Match: a client's own cache may keep a copy to revalidate, no shared
# cache may (the default for private answers, no-store, would forbid keeping the copy).
REVALIDATE = "private, no-cache"

# The sections of a rollup as sheets: (JSON field, sheet name, Vietnamese and English title,
# row model). A CSV holds one of them (`section`), a workbook all of them.
Section = Literal[
    "cells", "targets", "budget_totals", "budget", "tasks", "plan_progress", "timeliness"
]
SECTIONS: dict[str, tuple[str, tuple[str, str], type[BaseModel]]] = {
    "cells": ("Số liệu", ("Số liệu chỉ tiêu", "Figures"), CellRead),
    "targets": ("Mục tiêu", ("Mục tiêu và mức đạt", "Targets"), RollupTargetRead),
    "budget_totals": (
        "Ngân sách tổng hợp",
        ("Ngân sách theo nguồn và nơi nhận", "Budget totals"),
        BudgetTotalRow,
    ),
    "budget": ("Ngân sách đơn vị", ("Ngân sách theo đơn vị", "Budget by unit"), BudgetRow),
    "tasks": ("Nhiệm vụ", ("Tiến độ nhiệm vụ", "Tasks"), TaskRow),
    "plan_progress": ("Kế hoạch năm", ("Kế hoạch và thực hiện", "Plan progress"), PlanProgressRow),
    "timeliness": ("Đúng hạn", ("Tình hình gửi báo cáo", "Timeliness"), TimelinessRow),
}
SectionQuery = Annotated[
    Section | None,
    Query(
        description="For CSV: the section of the rollup in the file (default `cells`); a "
        "workbook has every section on a sheet of its own."
    ),
]


def rollup_tables(
    data: dict[str, Any], sections: list[str], summary: list[str], section: str | None
) -> list[Table]:
    """A rollup's JSON as sheets: the chosen section first (what a CSV holds), the others,
    then the run's own fields."""
    first = section or sections[0]
    ordered = [first, *(name for name in sections if name != first)]
    tables = []
    for name in ordered:
        sheet, titles, model = SECTIONS[name]
        tables.append(table_of(sheet, titles, model, data[name]))
    flat = {**data, **data.get("completeness", {})}
    tables.append(
        Table("Tổng hợp", "Tổng hợp", "Summary", SUMMARY_COLUMNS, summary_rows(flat, summary))
    )
    return tables


_YEAR_SUMMARY = [
    "programme", "year", "run_id", "seq", "level", "kind", "fingerprint", "computed_at",
    "published_at", "sources", "obligations", "submitted", "accepted", "on_time", "late",
    "missing",
]  # fmt: skip
_PHASE_SUMMARY = ["programme", "phase", "start_year", "end_year"]


@router.get(
    "/rollups/{programme}/{year}",
    operation_id="getRollup",
    openapi_extra=sends("ETag"),
    summary="Get the published rollup of a year",
    response_model=RollupRead,
    responses={
        **export_responses(
            "The published rollup; CSV: one section (`section`), XLSX: a sheet per section."
        ),
        **responses(NotFound),
        **NOT_MODIFIED,
    },
)
async def get_rollup(
    programme: str,
    year: Year,
    caller: RollupsReader,
    request: Request,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
    unit: Annotated[
        str | None, Query(max_length=100, description="Only this unit and those under it.")
    ] = None,
    task_group: Annotated[int | None, Query(ge=1, le=20)] = None,
    if_none_match: IfNoneMatch = None,
    format: FormatQuery = None,
    section: SectionQuery = None,
) -> Response:
    """The published rollup; poll with If-None-Match to get 304 while it is unchanged.
    As CSV or XLSX (`Accept` or `format`): the same figures, headed in Vietnamese."""
    caller.require(Permission.ROLLUPS_READ)
    chosen: ExportFormat = negotiate(request, format)
    resources: Resources = request.app.state.resources
    filters = Filters(indicator=indicator, unit=unit, task_group=task_group)
    # The tag is of the JSON representation: an export is always sent whole.
    tag = if_none_match if chosen == "json" else None
    found = await resources.rollups.read(resources.new_uow, caller, programme, year, filters, tag)
    if isinstance(found, NotModified):
        return Response(status_code=304, headers={"ETag": found.etag, "Cache-Control": REVALIDATE})
    if chosen != "json":
        data = json.loads(found.body)
        tables = rollup_tables(data, list(SECTIONS), _YEAR_SUMMARY, section)
        name = f"rollup-{programme}-{year}" + (f"-{section}" if section and chosen == "csv" else "")
        return export_response(tables, chosen, export_language(request), name)
    if found.etag is None:
        return Response(content=found.body, media_type=JSON)
    return Response(
        content=found.body,
        media_type=JSON,
        headers={"ETag": found.etag, "Cache-Control": REVALIDATE},
    )


@router.get(
    "/rollups/{programme}/{year}/runs",
    operation_id="listRollupRuns",
    summary="The runs of a year",
    responses=responses(NotFound),
)
async def list_runs(
    programme: str,
    year: Year,
    uow: UowDep,
    caller: RollupsReader,
    report_id: Annotated[
        uuid.UUID | None, Query(description="Only runs computed from this report.")
    ] = None,
    version_no: Annotated[
        int | None,
        Query(ge=1, le=10_000, description="With `report_id`: only runs of this version."),
    ] = None,
) -> RunsRead:
    """Every run kept, newest first, each with its inputs' fingerprint. With `report_id` and
    `version_no`: the runs that reflect that accepted version; the rollup reflects it once
    one of them is `published`."""
    if version_no is not None and report_id is None:
        raise Invalid(
            "version_no names a version of the report given in report_id.",
            code="validation_failed",
            fields=[FieldProblem(("query", "report_id"), "Needed with version_no.")],
        )
    return RunsRead.of(
        *await rollups.list_runs(
            uow, caller, programme, year, report_id=report_id, version_no=version_no
        )
    )


@router.get(
    "/rollups/{programme}/{year}/runs/{run_id}",
    operation_id="getRollupRun",
    summary="Get a run and its inputs",
    responses=responses(NotFound),
)
async def get_run(
    programme: str, year: Year, run_id: uuid.UUID, uow: UowDep, caller: RollupsReader
) -> RunDetailRead:
    """A run and the accepted report versions (nationally: the provincial runs) it was
    computed from; a refresh job's `result.run_id` names it."""
    return RunDetailRead.with_inputs(*await rollups.get_run(uow, caller, programme, year, run_id))


@router.get(
    "/rollups/{programme}/{year}/provenance",
    operation_id="getRollupProvenance",
    summary="The submissions and records behind a figure",
    responses=responses(NotFound),
)
async def get_provenance(
    programme: str,
    year: Year,
    uow: UowDep,
    caller: RollupsReader,
    indicator: Annotated[str, Query(max_length=100)],
    disaggregation: Annotated[str, Query(max_length=200)] = "",
    breakdown: Annotated[str, Query(max_length=200)] = "",
    run_id: uuid.UUID | None = None,
) -> ProvenanceRead:
    """The accepted report and programme record versions (nationally: the provincial runs)
    a figure was made from, each with the value it contributed; of the published run
    unless ``run_id``."""
    run, contributions = await rollups.provenance(
        uow, caller, programme, year, indicator=indicator, disaggregation=disaggregation,
        breakdown=breakdown, run_id=run_id,
    )  # fmt: skip
    return ProvenanceRead.of(run, indicator, disaggregation, breakdown, contributions)


@router.get(
    "/phase-rollups/{programme}/{phase}",
    operation_id="getPhaseRollup",
    summary="Get the rollup of a phase",
    response_model=RollupPhaseRead,
    responses={
        **export_responses("The phase's rollup; CSV: `cells` or `targets`, XLSX: both."),
        **responses(NotFound),
    },
)
async def get_phase(
    programme: str,
    phase: Annotated[str, Path(max_length=100)],
    uow: UowDep,
    caller: RollupsReader,
    request: Request,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
    format: FormatQuery = None,
    section: Annotated[
        Literal["cells", "targets"] | None,
        Query(description="For CSV: the section in the file (default `cells`)."),
    ] = None,
) -> Any:
    """The phase's published years combined, and its targets judged on them."""
    chosen = negotiate(request, format)
    read = RollupPhaseRead.of(await rollups.get_phase(uow, caller, programme, phase, indicator))
    if chosen == "json":
        return read
    data = read.model_dump(mode="json")
    tables = rollup_tables(data, ["cells", "targets"], _PHASE_SUMMARY, section)
    return export_response(tables, chosen, export_language(request), f"rollup-{programme}-{phase}")


@router.post(
    "/rollups",
    status_code=202,
    operation_id="requestRollup",
    openapi_extra=sends("Location"),
    dependencies=[IDEMPOTENT],
    summary="Recompute rollups",
    responses={**responses(NotFound, Invalid), **JOB_QUEUED},
)
async def request_rollup(
    body: RollupRequest, uow: UowDep, caller: JobsRunner, response: Response
) -> JobRead:
    """Queue a refresh of a year (or every year); follow `Location` to watch the job."""
    job = await rollups.request_refresh(uow, caller, body.programme, body.year, full=body.full)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobRead.of(job)
