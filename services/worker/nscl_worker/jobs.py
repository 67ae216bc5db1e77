"""arq job functions: thin adapters from the queue to the domain."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from nscl_domain.jobs import schedules
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
        observer=deps.observer,
    )


async def sweep_outbox(ctx: JobCtx) -> int:
    """Hand over again the outbox jobs due but not started, and those whose worker died."""
    deps = _deps(ctx)
    return await jobs.sweep(
        deps.sessionmaker,
        deps.queue,
        grace=timedelta(seconds=deps.settings.outbox_grace_seconds),
    )


async def fire_schedules(ctx: JobCtx) -> int:
    """Write the jobs of the schedules whose fire time has come (once across all workers)."""
    deps = _deps(ctx)
    fired = await schedules.fire_due(
        deps.new_uow(), catch_up=timedelta(seconds=deps.settings.schedule_catch_up_seconds)
    )
    return len(fired)
