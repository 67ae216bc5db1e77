"""Request and response bodies of /v1/schedules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from nscl_api.jobs.schemas import JobRead
from nscl_api.types import RequestModel, ResponseModel
from nscl_domain.jobs import JobStatus
from nscl_domain.jobs.cron import TIME_ZONE_NAME
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.schedules import ScheduleView

CRON_DESCRIPTION = (
    f"Five cron fields (minute hour day-of-month month day-of-week), read in {TIME_ZONE_NAME}."
)


class ScheduleCreate(RequestModel):
    """A job to run at the times a cron expression names."""

    key: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z0-9][a-z0-9._:-]*$",
        examples=["post-deadline-rebuild:bac-kan-nscl"],
    )
    job_name: str = Field(max_length=100, examples=["rollups.rebuild"])
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="Checked as the job's own route checks them.",
        examples=[{"programme_id": "0193a5b2-7c1d-7e4f-8a9b-0c1d2e3f4a5b"}],
    )
    cron: str = Field(max_length=100, description=CRON_DESCRIPTION, examples=["0 2 1 12 *"])
    enabled: bool = True
    description: str = Field(default="", max_length=1000)


class ScheduleUpdate(RequestModel):
    """What to change of a schedule; fields left out stay as they are."""

    job_name: str | None = Field(default=None, max_length=100)
    args: dict[str, Any] | None = Field(
        default=None, description="Checked as the job's own route checks them."
    )
    cron: str | None = Field(default=None, max_length=100, description=CRON_DESCRIPTION)
    enabled: bool | None = Field(
        default=None,
        description="false pauses the schedule; true resumes it from now on (fire times "
        "that passed while it was paused are not made up).",
    )
    description: str | None = Field(default=None, max_length=1000)


class ScheduleRun(ResponseModel):
    """A job the schedule fired, and how it ended (or where it stands)."""

    job_id: uuid.UUID
    fire_at: datetime = Field(description="The fire time, or when an operator ran it.")
    status: JobStatus
    trigger: Literal["schedule", "operator"]
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> ScheduleRun:
        assert job.fire_at is not None
        return cls(
            job_id=job.id,
            fire_at=job.fire_at,
            status=JobStatus(job.status),
            trigger="schedule" if job.requested_by == "schedule" else "operator",
            attempts=job.attempts,
            started_at=job.started_at,
            finished_at=job.finished_at,
            error=job.error,
        )


class ScheduleRead(ResponseModel):
    """A schedule, its next fire times and its latest runs."""

    key: str = Field(examples=["nightly-rollups-rebuild"])
    job_name: str = Field(examples=["rollups.rebuild"])
    args: dict[str, Any]
    cron: str = Field(description=CRON_DESCRIPTION, examples=["30 1 * * *"])
    time_zone: str = Field(description="The zone the cron expression is read in.")
    enabled: bool = Field(description="false: paused.")
    description: str
    next_fire_times: list[datetime] = Field(
        description="The next fire times (none while paused), with the zone's offset."
    )
    last_runs: list[ScheduleRun] = Field(description="The latest runs, newest first.")
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: ScheduleView) -> ScheduleRead:
        s = view.schedule
        return cls(
            key=s.key,
            job_name=s.job_name,
            args=s.args,
            cron=s.cron,
            time_zone=TIME_ZONE_NAME,
            enabled=s.enabled,
            description=s.description,
            next_fire_times=view.next_fire_times,
            last_runs=[ScheduleRun.of(job) for job in view.runs],
            created_by=s.created_by,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class ScheduleList(ResponseModel):
    """Every schedule, in key order (a handful: no pagination)."""

    items: list[ScheduleRead]


__all__ = ["JobRead", "ScheduleCreate", "ScheduleList", "ScheduleRead", "ScheduleUpdate"]
