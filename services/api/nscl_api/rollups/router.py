"""/v1/rollups: published rollups of a year, their runs and provenance; refreshes.
/v1/phase-rollups: published rollups of a phase."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from nscl_api.conditional import sends
from nscl_api.deps import JobsRunner, RollupsReader, UowDep
from nscl_api.errors import responses
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.jobs.schemas import JOB_QUEUED, JobRead
from nscl_api.resources import Resources
from nscl_api.rollups.published import NotModified, accepts_gzip
from nscl_api.rollups.schemas import (
    ProvenanceRead,
    RollupPhaseRead,
    RollupRead,
    RollupRequest,
    RunDetailRead,
    RunsRead,
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


@router.get(
    "/rollups/{programme}/{year}",
    operation_id="getRollup",
    openapi_extra=sends("ETag"),
    summary="Get the published rollup of a year",
    response_model=RollupRead,
    responses={**responses(NotFound), **NOT_MODIFIED},
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
) -> Response:
    """The published rollup; poll with If-None-Match to get 304 while it is unchanged. With
    `Accept-Encoding: gzip` the body comes compressed (compressed once per run, not per
    request); its ETag differs from the uncompressed body's."""
    caller.require(Permission.ROLLUPS_READ)
    resources: Resources = request.app.state.resources
    filters = Filters(indicator=indicator, unit=unit, task_group=task_group)
    # Read from the raw headers, not declared: the contract's headers stay the request's own.
    encoding = "gzip" if accepts_gzip(request.headers.get("accept-encoding")) else None
    found = await resources.rollups.read(
        resources.new_uow, caller, programme, year, filters, if_none_match, encoding
    )
    headers = {"Vary": "Accept-Encoding"}
    if isinstance(found, NotModified):
        headers |= {"ETag": found.etag, "Cache-Control": REVALIDATE}
        return Response(status_code=304, headers=headers)
    if found.encoding is not None:
        headers["Content-Encoding"] = found.encoding
    if found.etag is not None:
        headers |= {"ETag": found.etag, "Cache-Control": REVALIDATE}
    return Response(content=found.body, media_type=JSON, headers=headers)


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
    summary="The submissions behind a figure",
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
    """The accepted report versions (nationally: the provincial runs) a figure was made
    from, each with the value it contributed; of the published run unless ``run_id``."""
    run, contributions = await rollups.provenance(
        uow, caller, programme, year, indicator=indicator, disaggregation=disaggregation,
        breakdown=breakdown, run_id=run_id,
    )  # fmt: skip
    return ProvenanceRead.of(run, indicator, disaggregation, breakdown, contributions)


@router.get(
    "/phase-rollups/{programme}/{phase}",
    operation_id="getPhaseRollup",
    summary="Get the rollup of a phase",
    responses=responses(NotFound),
)
async def get_phase(
    programme: str,
    phase: Annotated[str, Path(max_length=100)],
    uow: UowDep,
    caller: RollupsReader,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
) -> RollupPhaseRead:
    """The phase's published years combined, and its targets judged on them."""
    return RollupPhaseRead.of(await rollups.get_phase(uow, caller, programme, phase, indicator))


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
