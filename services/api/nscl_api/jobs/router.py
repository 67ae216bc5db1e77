"""/v1/jobs: the record of background work, and operators' requests for it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from nscl_api.conditional import sends
from nscl_api.deps import JobsReader, JobsRunner, RegistryDep, UowDep
from nscl_api.errors import responses
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.jobs.schemas import JOB_QUEUED, JobCreate, JobRead
from nscl_api.pagination import Page, before_id_of, encode_cursor, split_page
from nscl_domain.errors import Conflict, Invalid, NotFound
from nscl_domain.jobs import JobName, JobStatus
from nscl_domain.jobs import service as jobs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get(
    "",
    operation_id="listJobs",
    summary="List jobs",
    responses=responses(Invalid),
)
async def list_jobs(
    uow: UowDep,
    caller: JobsReader,
    status: JobStatus | None = None,
    name: JobName | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[JobRead]:
    """List jobs, newest first, filtered by status and name."""
    before_id = before_id_of(cursor)
    rows = await jobs.list_jobs(
        uow, caller, status=status, name=name, before_id=before_id, limit=limit
    )
    page, more = split_page(rows, limit)
    return Page[JobRead](
        items=[JobRead.of(job) for job in page],
        next_cursor=encode_cursor({"before": str(page[-1].id)}) if more else None,
    )


@router.get(
    "/{job_id}",
    operation_id="getJob",
    summary="Get a job",
    responses=responses(NotFound),
)
async def get_job(job_id: uuid.UUID, uow: UowDep, caller: JobsReader) -> JobRead:
    """Show a job's status, attempts, timings, progress, error and result."""
    job = await jobs.get(uow, caller, job_id)
    return JobRead.of(job, await jobs.progress_of(uow, caller, job_id))


@router.post(
    "/{job_id}/cancellation",
    operation_id="cancelJob",
    summary="Cancel a job",
    responses=responses(NotFound, Conflict),
)
async def cancel_job(job_id: uuid.UUID, uow: UowDep, caller: JobsRunner) -> JobRead:
    """Cancel a pending job at once, or ask a running one to stop at its next progress
    report (`cancel_requested`; it ends `cancelled`, its work rolled back). 409 once done."""
    return JobRead.of(await jobs.cancel(uow, caller, job_id))


@router.post(
    "/{job_id}/retry",
    status_code=202,
    operation_id="retryJob",
    openapi_extra=sends("Location"),
    summary="Run a failed job again",
    responses={**responses(NotFound, Conflict), **JOB_QUEUED},
)
async def retry_job(
    job_id: uuid.UUID, uow: UowDep, caller: JobsRunner, response: Response
) -> JobRead:
    """Put a failed or cancelled job back to pending with a fresh budget of attempts and
    queue it (409 when it is not failed or cancelled, or a pending job with its key exists)."""
    job = await jobs.retry(uow, caller, job_id)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobRead.of(job)


@router.post(
    "",
    status_code=202,
    operation_id="createJob",
    openapi_extra=sends("Location"),
    dependencies=[IDEMPOTENT],
    summary="Start a maintenance job",
    responses={**responses(Invalid), **JOB_QUEUED},
)
async def create_job(
    body: JobCreate, uow: UowDep, caller: JobsRunner, registry: RegistryDep, response: Response
) -> JobRead:
    """Record a job in the outbox and queue it; follow `Location` to watch it."""
    job = await jobs.schedule(uow, caller, registry, body.name, body.args)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobRead.of(job)
