"""arq job functions: thin adapters from the queue to the domain."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from nscl_domain.jobs import JobName
from nscl_domain.jobs import service as jobs
from nscl_worker.deps import WorkerDeps

JobCtx = dict[str, Any]


def _deps(ctx: JobCtx) -> WorkerDeps:
    deps = ctx["deps"]
    assert isinstance(deps, WorkerDeps)
    return deps


async def run_job(ctx: JobCtx, job_id: str) -> dict[str, Any] | None:
    """Run one attempt of the outbox job ``job_id``; the row, not arq, decides on retries."""
    deps = _deps(ctx)
    return await jobs.run_attempt(
        deps.sessionmaker,
        deps.registry,
        uuid.UUID(job_id),
        queue=deps.queue,
        lease=timedelta(seconds=deps.settings.job_lease_seconds),
        heartbeat_seconds=deps.settings.job_heartbeat_seconds,
    )


async def sweep_outbox(ctx: JobCtx) -> int:
    """Hand over again the outbox jobs due but not started, and those whose worker died."""
    deps = _deps(ctx)
    return await jobs.sweep(
        deps.sessionmaker,
        deps.queue,
        grace=timedelta(seconds=deps.settings.outbox_grace_seconds),
    )


async def schedule_nightly_prune(ctx: JobCtx) -> str:
    """Record the nightly clean-up of old finished jobs in the outbox."""
    return await _schedule_nightly(ctx, JobName.PRUNE_JOBS, {"older_than_days": 30})


async def schedule_nightly_rollups(ctx: JobCtx) -> str:
    """Record the nightly rebuild of every rollup whose inputs changed (catalogue edits,
    budget movements) in the outbox; changes to reports refresh their year at once."""
    return await _schedule_nightly(ctx, JobName.REBUILD_ROLLUPS, {})


async def _schedule_nightly(ctx: JobCtx, name: JobName, args: dict[str, Any]) -> str:
    deps = _deps(ctx)
    uow = deps.new_uow()
    async with uow:
        job = await uow.schedule(
            name, args, dedup_key=f"nightly:{name.value}", requested_by="schedule"
        )
        await uow.commit()
    return str(job.id)
