"""Use cases of jobs: schedule, read, run one attempt, sweep, prune."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nscl_domain.budget import service as budget
from nscl_domain.clock import Clock, utcnow
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName, JobQueue, JobStatus, PermanentJobError, RetryLater
from nscl_domain.jobs.models import Job, JobProgress
from nscl_domain.jobs.registry import JobContext, JobKind, JobRegistry, ProgressReporter
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.rollups import service as rollups
from nscl_domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

MAX_RETRY_DELAY_SECONDS = 300.0


class PruneJobsArgs(BaseModel):
    """Arguments of ``jobs.prune``."""

    model_config = ConfigDict(extra="forbid")

    older_than_days: int = Field(
        default=30, ge=1, le=3650, description="Delete finished jobs older than this."
    )


async def _prune_jobs(ctx: JobContext, args: PruneJobsArgs) -> dict[str, Any]:
    cutoff = ctx.now - timedelta(days=args.older_than_days)
    deleted = await JobRepository(ctx.session).delete_finished_before(cutoff)
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}


DEFAULT_REGISTRY: JobRegistry = {
    JobName.BUILD_DOSSIERS: JobKind(
        name=JobName.BUILD_DOSSIERS,
        args_model=budget.BuildDossiersArgs,
        handler=budget.build_dossiers,
        validate=budget.check_dossier_build,
        description="Build the budget year's dossiers for Finance and Planning and Investment.",
    ),
    JobName.REFRESH_ROLLUP: JobKind(
        name=JobName.REFRESH_ROLLUP,
        args_model=rollups.RefreshRollupArgs,
        handler=rollups.refresh,
        validate=rollups.check_refresh,
        description="Recompute a programme-year's rollup: the cells changes touch, or all.",
        operator_may_schedule=True,
    ),
    JobName.REBUILD_ROLLUPS: JobKind(
        name=JobName.REBUILD_ROLLUPS,
        args_model=rollups.RebuildRollupsArgs,
        handler=rollups.rebuild,
        validate=rollups.check_rebuild,
        description="Recompute every programme-year whose inputs changed (nightly).",
        operator_may_schedule=True,
    ),
    JobName.PRUNE_JOBS: JobKind(
        name=JobName.PRUNE_JOBS,
        args_model=PruneJobsArgs,
        handler=_prune_jobs,
        description="Delete finished jobs older than a number of days.",
        operator_may_schedule=True,
    ),
}


async def schedule(
    uow: UnitOfWork,
    caller: Caller,
    registry: JobRegistry,
    name: str,
    args: dict[str, Any],
) -> Job:
    """Validate an operator's request for a job and record it in the outbox."""
    caller.require(Permission.JOBS_RUN)
    kind = registry.get(name)
    if kind is None or not kind.operator_may_schedule:
        allowed = sorted(k for k, v in registry.items() if v.operator_may_schedule)
        raise Invalid(
            f"Unknown job name {name!r}.",
            code="unknown_job",
            fields=[FieldProblem(("body", "name"), f"Must be one of: {', '.join(allowed)}.")],
        )
    try:
        parsed = kind.args_model.model_validate(args)
    except ValidationError as exc:
        raise Invalid(
            f"Invalid arguments for job {name!r}.",
            code="invalid_job_args",
            fields=FieldProblem.all_of(exc, ("body", "args")),
        ) from exc
    async with uow:
        # The same check the job's own route makes, and every attempt makes again.
        await kind.check(uow.session, parsed, ("body", "args"))
        job = await uow.schedule(
            name, parsed.model_dump(mode="json"), requested_by=caller.client_id
        )
        uow.audit.record(
            caller, "job.scheduled", "job", job.id, after={"name": name, "args": job.args}
        )
        await uow.commit()
    return job


async def get(uow: UnitOfWork, caller: Caller, job_id: uuid.UUID) -> Job:
    """Return one job or raise NotFound."""
    caller.require(Permission.JOBS_READ)
    async with uow:
        job = await uow.jobs.get(job_id)
    if job is None:
        raise NotFound(f"Job {job_id} does not exist.", code="job_not_found")
    return job


async def progress_of(uow: UnitOfWork, caller: Caller, job_id: uuid.UUID) -> dict[str, Any] | None:
    """What a running job last said of its progress (None until it says something)."""
    caller.require(Permission.JOBS_READ)
    async with uow:
        return await uow.session.scalar(
            select(JobProgress.progress).where(JobProgress.job_id == job_id)
        )


async def cancel(uow: UnitOfWork, caller: Caller, job_id: uuid.UUID) -> Job:
    """Cancel a job that has not started; the worker skips it when the queue delivers it."""
    caller.require(Permission.JOBS_RUN)
    async with uow:
        job = await uow.jobs.lock(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} does not exist.", code="job_not_found")
        if job.status != JobStatus.PENDING.value:
            raise Conflict(
                f"A {job.status} job cannot be cancelled; only pending ones can.",
                code="job_not_cancellable",
            )
        job.status = JobStatus.CANCELLED.value
        job.finished_at = uow.now()
        uow.audit.record(caller, "job.cancelled", "job", job.id, after={"name": job.name})
        await uow.commit()
    return job


async def list_jobs(
    uow: UnitOfWork,
    caller: Caller,
    *,
    status: JobStatus | None = None,
    name: str | None = None,
    before_id: uuid.UUID | None = None,
    limit: int = 50,
) -> Sequence[Job]:
    """Return jobs newest first: ``limit`` + 1 rows, so callers can tell whether more follow."""
    caller.require(Permission.JOBS_READ)
    async with uow:
        return await uow.jobs.list(status=status, name=name, before_id=before_id, limit=limit + 1)


async def run_attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: JobRegistry,
    job_id: uuid.UUID,
    *,
    clock: Clock = utcnow,
) -> dict[str, Any] | None:
    """Run one attempt of a job; its effects and its completion commit together.

    Running a job again after it succeeded is a no-op that returns the stored result, so
    the queue may deliver a job more than once (it does after losing its contents).
    Raises RetryLater when the attempt failed and the job has attempts left.
    """
    now = clock()
    async with sessionmaker() as session:
        repo = JobRepository(session)
        job = await repo.get(job_id)
        if job is None:
            log.warning("job.unknown", job_id=str(job_id))
            return None
        if job.job_status.is_final:
            return job.result
        if job.not_before is not None and job.not_before > now:
            raise RetryLater((job.not_before - now).total_seconds(), "not due yet")
        claimed = await repo.claim(job_id, now)
        await session.commit()
    if claimed is None:
        return None

    kind = registry.get(claimed.name)
    try:
        if kind is None:
            raise LookupError(f"no handler for job {claimed.name!r}")
        args = kind.args_model.model_validate(claimed.args)
        async with sessionmaker() as session:
            repo = JobRepository(session)
            job = await repo.lock(job_id)
            if job is None or job.status != JobStatus.RUNNING.value:
                # Another delivery of the same job finished it while this one waited.
                return job.result if job is not None else None
            context = JobContext(
                session=session,
                job_id=job_id,
                attempt=job.attempts,
                now=now,
                report_progress=_progress_writer(sessionmaker, job_id),
                sessionmaker=sessionmaker,
            )
            result = await kind.run(context, args)
            job.status = JobStatus.SUCCEEDED.value
            job.result = result
            job.error = None
            job.finished_at = clock()
            await session.commit()
        log.info(
            "job.succeeded", job_id=str(job_id), job_name=claimed.name, attempt=claimed.attempts
        )
        return result
    except Exception as exc:
        await _record_failure(sessionmaker, claimed, exc, clock)
        return None


def _progress_writer(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID
) -> ProgressReporter:
    async def write(progress: dict[str, Any]) -> None:
        # Its own short transaction: readers see progress before the job's work commits.
        async with sessionmaker() as session:
            await session.execute(
                insert(JobProgress)
                .values(job_id=job_id, progress=progress)
                .on_conflict_do_update(
                    index_elements=[JobProgress.job_id],
                    set_={"progress": progress, "updated_at": func.now()},
                )
            )
            await session.commit()

    return write


async def _record_failure(
    sessionmaker: async_sessionmaker[AsyncSession],
    claimed: Job,
    exc: Exception,
    clock: Clock,
) -> None:
    retry_delay = (
        exc.delay_seconds
        if isinstance(exc, RetryLater)
        else min(MAX_RETRY_DELAY_SECONDS, 2.0**claimed.attempts)
    )
    retryable = claimed.attempts < claimed.max_attempts and not isinstance(
        exc, LookupError | PermanentJobError | ValidationError
    )
    message = f"{type(exc).__name__}: {exc}"[:4000]
    async with sessionmaker() as session:
        job = await JobRepository(session).lock(claimed.id)
        if job is not None and job.status == JobStatus.RUNNING.value:
            job.error = message
            if retryable:
                job.status = JobStatus.PENDING.value
            else:
                job.status = JobStatus.FAILED.value
                job.finished_at = clock()
        await session.commit()
    log.warning(
        "job.attempt_failed",
        job_id=str(claimed.id),
        job_name=claimed.name,
        attempt=claimed.attempts,
        retrying=retryable,
        error=message,
        exc_info=not isinstance(exc, RetryLater),
    )
    if retryable:
        raise RetryLater(retry_delay, message) from exc
    return


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    *,
    grace: timedelta,
    running_timeout: timedelta,
    clock: Clock = utcnow,
    limit: int = 1000,
) -> int:
    """Hand the queue every job that is not done; the queue drops those it still holds."""
    now = clock()
    async with sessionmaker() as session:
        repo = JobRepository(session)
        due = await repo.due_for_sweep(
            pending_before=now - grace, running_before=now - running_timeout, limit=limit
        )
        handed: list[uuid.UUID] = []
        for job in due:
            if await queue.enqueue(job.id, not_before=job.not_before):
                handed.append(job.id)
        await repo.mark_enqueued([job.id for job in due], now)
        await session.commit()
    if handed:
        log.info("jobs.swept", requeued=len(handed), checked=len(due))
    return len(handed)
