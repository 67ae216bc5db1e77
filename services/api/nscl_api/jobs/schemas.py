"""Request and response bodies of /v1/jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field, JsonValue

from nscl_api.types import RequestModel, ResponseModel
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.jobs import JobName, JobStatus
from nscl_domain.jobs.models import Job

SCHEDULABLE: list[JsonValue] = [
    str(k) for k, kind in sorted(DEFAULT_REGISTRY.items()) if kind.operator_may_schedule
]

# The answer of a route that queues a job: 202, and where to watch the job.
JOB_QUEUED: dict[int | str, dict[str, Any]] = {
    202: {
        "headers": {
            "Location": {"description": "The job resource to watch.", "schema": {"type": "string"}}
        }
    }
}


class JobCreate(RequestModel):
    """An operator's request to run a maintenance job."""

    # Checked against the running registry (unknown_job); the contract lists the kinds the
    # service's own registry lets operators start.
    name: str = Field(
        max_length=100,
        examples=["jobs.prune"],
        json_schema_extra={"enum": SCHEDULABLE},
    )
    args: dict[str, Any] = Field(default_factory=dict, examples=[{"older_than_days": 30}])


class JobProgress(ResponseModel):
    """How far a running job has come: its current stage and the items of it done."""

    stage: str = Field(
        description="Stage of the job's kind, e.g. `fingerprints`, `cells`, `published` for "
        "rollup refreshes.",
        examples=["cells"],
    )
    done: int = Field(ge=0, examples=[3])
    total: int = Field(ge=0, examples=[12])


class JobRead(ResponseModel):
    """A job: what it is, where it stands, and what came of it."""

    id: uuid.UUID
    name: JobName = Field(examples=["jobs.prune"])
    status: JobStatus
    args: dict[str, Any]
    attempts: int = Field(description="Attempts started so far.")
    max_attempts: int
    requested_by: str | None
    created_at: datetime
    enqueued_at: datetime | None = Field(description="Last hand-over to the queue.")
    started_at: datetime | None = Field(description="Start of the latest attempt.")
    finished_at: datetime | None
    duration_seconds: float | None = Field(description="Of the latest attempt, once finished.")
    cancel_requested: bool = Field(
        default=False, description="An operator asked the running job to stop."
    )
    lease_expires_at: datetime | None = Field(
        default=None, description="Until when the running attempt holds the job."
    )
    error: str | None = Field(description="Error of the latest failed attempt.")
    result: dict[str, Any] | None
    progress: JobProgress | None = Field(
        default=None,
        description="What a running job last said of how far it has come; null until it says.",
    )

    @classmethod
    def of(cls, job: Job, progress: dict[str, Any] | None = None) -> JobRead:
        duration = (
            (job.finished_at - job.started_at).total_seconds()
            if job.finished_at and job.started_at
            else None
        )
        return cls(
            id=job.id,
            name=JobName(job.name),
            status=JobStatus(job.status),
            args=job.args,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            requested_by=job.requested_by,
            created_at=job.created_at,
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_seconds=duration,
            cancel_requested=job.cancel_requested,
            lease_expires_at=job.lease_expires_at,
            error=job.error,
            result=job.result,
            progress=None if progress is None else JobProgress.model_validate(progress),
        )
