"""/v1/schedules: when maintenance and aggregation jobs run, as operators say."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from nscl_api.conditional import sends
from nscl_api.deps import JobsReader, JobsRunner, RegistryDep, UowDep
from nscl_api.errors import responses
from nscl_api.jobs.schemas import JOB_QUEUED, JobRead
from nscl_api.schedules.schemas import (
    ScheduleCreate,
    ScheduleList,
    ScheduleRead,
    ScheduleUpdate,
)
from nscl_domain.errors import Conflict, Invalid, NotFound
from nscl_domain.jobs import schedules

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])
Key = Annotated[str, Path(max_length=100, description="The schedule's key.")]
Upcoming = Annotated[int, Query(ge=1, le=50, description="How many next fire times to show.")]
LastRuns = Annotated[int, Query(ge=0, le=100, description="How many latest runs to show.")]


@router.get("", operation_id="listSchedules", summary="List schedules")
async def list_schedules(
    uow: UowDep, caller: JobsReader, upcoming: Upcoming = 3, last_runs: LastRuns = 5
) -> ScheduleList:
    """Every schedule with its next fire times and latest runs."""
    views = await schedules.list_schedules(uow, caller, upcoming=upcoming, last_runs=last_runs)
    return ScheduleList(items=[ScheduleRead.of(v) for v in views])


@router.post(
    "",
    status_code=201,
    operation_id="createSchedule",
    openapi_extra=sends("Location"),
    summary="Add a schedule",
    responses=responses(Invalid, Conflict, NotFound),
)
async def create_schedule(
    body: ScheduleCreate,
    uow: UowDep,
    caller: JobsRunner,
    registry: RegistryDep,
    response: Response,
) -> ScheduleRead:
    """Add a schedule; its job and arguments pass the checks of the job's own route."""
    view = await schedules.create_schedule(
        uow,
        caller,
        registry,
        key=body.key,
        job_name=body.job_name,
        args=body.args,
        cron_expression=body.cron,
        enabled=body.enabled,
        description=body.description,
    )
    response.headers["Location"] = f"/v1/schedules/{view.schedule.key}"
    return ScheduleRead.of(view)


@router.get(
    "/{schedule}",
    operation_id="getSchedule",
    summary="Get a schedule",
    responses=responses(NotFound),
)
async def get_schedule(
    schedule: Key,
    uow: UowDep,
    caller: JobsReader,
    upcoming: Upcoming = 3,
    last_runs: LastRuns = 5,
) -> ScheduleRead:
    """A schedule with its next fire times and latest runs."""
    view = await schedules.get_schedule(
        uow, caller, schedule, upcoming=upcoming, last_runs=last_runs
    )
    return ScheduleRead.of(view)


@router.patch(
    "/{schedule}",
    operation_id="updateSchedule",
    summary="Change, pause or resume a schedule",
    responses=responses(NotFound, Invalid),
)
async def update_schedule(
    schedule: Key, body: ScheduleUpdate, uow: UowDep, caller: JobsRunner, registry: RegistryDep
) -> ScheduleRead:
    """Change a schedule; `enabled: false` pauses it, `true` resumes it from now on."""
    changes = schedules.ScheduleChanges(**body.model_dump(exclude_unset=True))
    return ScheduleRead.of(
        await schedules.update_schedule(uow, caller, registry, schedule, changes)
    )


@router.delete(
    "/{schedule}",
    status_code=204,
    operation_id="deleteSchedule",
    summary="Remove a schedule",
    responses=responses(NotFound),
)
async def delete_schedule(schedule: Key, uow: UowDep, caller: JobsRunner) -> Response:
    """Remove a schedule; the jobs it fired stay in /v1/jobs."""
    await schedules.delete_schedule(uow, caller, schedule)
    return Response(status_code=204)


@router.post(
    "/{schedule}/runs",
    status_code=202,
    operation_id="runSchedule",
    openapi_extra=sends("Location"),
    summary="Run a schedule's job now",
    responses={**responses(NotFound, Invalid, Conflict), **JOB_QUEUED},
)
async def run_schedule(
    schedule: Key, uow: UowDep, caller: JobsRunner, registry: RegistryDep, response: Response
) -> JobRead:
    """Queue the schedule's job now (listed among its runs); follow `Location` to watch it."""
    job = await schedules.run_now(uow, caller, registry, schedule)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobRead.of(job)
