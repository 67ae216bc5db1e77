"""Jobs of the jobs context itself: pruning finished jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext, JobKind
from nscl_domain.jobs.repository import JobRepository


class PruneJobsArgs(BaseModel):
    """Arguments of ``jobs.prune``."""

    model_config = ConfigDict(extra="forbid")

    older_than_days: int = Field(
        default=30, ge=1, le=3650, description="Delete finished jobs older than this."
    )


async def _prune_jobs(ctx: JobContext, args: PruneJobsArgs) -> dict[str, Any]:
    cutoff = ctx.now - timedelta(days=args.older_than_days)
    deleted = await ctx.get(JobRepository).delete_finished_before(cutoff)
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}


JOBS: tuple[JobKind, ...] = (
    JobKind(
        name=JobName.PRUNE_JOBS,
        args_model=PruneJobsArgs,
        handler=_prune_jobs,
        description="Delete finished jobs older than a number of days.",
        operator_may_schedule=True,
    ),
)
