"""Use cases of jobs: schedule, read, cancel, retry, run one attempt, sweep, prune."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.clock import Clock, utcnow
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import (
    AttemptLost,
    AttemptObserver,
    JobCancelled,
    JobQueue,
    JobStatus,
    PermanentJobError,
    RetryLater,
)
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import (
    JobContext,
    JobKind,
    JobRegistry,
    Location,
    Progress,
    ProgressReporter,
    actor_named,
)
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.repositories import RepositorySource
from nscl_domain.uow import UnitOfWork, written_by_hooks

log = structlog.get_logger(__name__)

MAX_RETRY_DELAY_SECONDS = 300.0


def operator_job(registry: JobRegistry, name: str, at: Location) -> JobKind:
    """The kind of job an operator may ask for by ``name``, or Invalid naming ``at``."""
    kind = registry.get(name)
    if kind is None or not kind.operator_may_schedule:
        allowed = sorted(k for k, v in registry.items() if v.operator_may_schedule)
        raise Invalid(
            f"Unknown job name {name!r}.",
            code="unknown_job",
            fields=[FieldProblem(at, f"Must be one of: {', '.join(allowed)}.")],
        )
    return kind


def parse_args(kind: JobKind, args: dict[str, Any], at: Location) -> BaseModel:
    """The job's arguments parsed by its model, or Invalid naming every field under ``at``."""
    try:
        return kind.args_model.model_validate(args)
    except ValidationError as exc:
        raise Invalid(
            f"Invalid arguments for job {kind.name!r}.",
            code="invalid_job_args",
            fields=FieldProblem.all_of(exc, at),
        ) from exc


async def checked_args(
    repositories: RepositorySource,
    registry: JobRegistry,
    name: str,
    args: dict[str, Any],
    *,
    at_name: Location = ("body", "name"),
    at_args: Location = ("body", "args"),
) -> dict[str, Any]:
    """Every check an operator's job request passes, in the transaction of ``repositories``:
    the name, the arguments' shape, and the kind's own check against the database (the one
    its dedicated route and every attempt make). Returns the arguments as stored."""
    kind = operator_job(registry, name, at_name)
    parsed = parse_args(kind, args, at_args)
    await kind.check(repositories, parsed, at_args)
    return parsed.model_dump(mode="json")


async def schedule(
    uow: UnitOfWork,
    caller: Caller,
    registry: JobRegistry,
    name: str,
    args: dict[str, Any],
) -> Job:
    """Validate an operator's request for a job and record it in the outbox."""
    caller.require(Permission.JOBS_RUN)
    kind = operator_job(registry, name, ("body", "name"))
    parsed = parse_args(kind, args, ("body", "args"))
    async with uow:
        # The same check the job's own route makes, and every attempt makes again.
        await kind.check(uow, parsed, ("body", "args"))
        job = await uow.schedule(
            name, parsed.model_dump(mode="json"), requested_by=caller.client_id
        )
        uow.get(AuditRepository).record(
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
        return await uow.jobs.progress(job_id)


async def cancel(uow: UnitOfWork, caller: Caller, job_id: uuid.UUID) -> Job:
    """Cancel a job: a pending one at once, a running one at its next progress report."""
    caller.require(Permission.JOBS_RUN)
    async with uow:
        job = await uow.jobs.lock(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} does not exist.", code="job_not_found")
        if job.job_status.is_final:
            raise Conflict(
                f"A {job.status} job cannot be cancelled; only pending and running ones can.",
                code="job_not_cancellable",
            )
        if job.status == JobStatus.PENDING.value:
            job.status = JobStatus.CANCELLED.value
            job.finished_at = uow.now()
        else:
            # The running attempt sees the flag at its next progress report or lease renewal.
            job.cancel_requested = True
        uow.get(AuditRepository).record(
            caller, "job.cancelled", "job", job.id, after={"name": job.name, "status": job.status}
        )
        await uow.commit()
    return job


async def retry(uow: UnitOfWork, caller: Caller, job_id: uuid.UUID) -> Job:
    """Run a failed or cancelled job again, with a fresh budget of attempts."""
    caller.require(Permission.JOBS_RUN)
    async with uow:
        job = await uow.jobs.lock(job_id)
        if job is None:
            raise NotFound(f"Job {job_id} does not exist.", code="job_not_found")
        if job.status not in (JobStatus.FAILED.value, JobStatus.CANCELLED.value):
            raise Conflict(
                f"A {job.status} job cannot be retried; only failed and cancelled ones can.",
                code="job_not_retryable",
            )
        twin = await uow.jobs.pending_twin(job)
        if twin is not None:
            raise Conflict(
                f"Job {twin} is pending with the same key and will do this job's work.",
                code="job_already_pending",
            )
        job.status = JobStatus.PENDING.value
        job.max_attempts = job.attempts + uow.job_max_attempts
        job.cancel_requested = False
        job.not_before = None
        job.finished_at = None
        job.lease_expires_at = None
        job.handovers += 1
        uow.hand_over(job)
        uow.get(AuditRepository).record(
            caller, "job.retried", "job", job.id, after={"name": job.name, "attempts": job.attempts}
        )
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


DEFAULT_LEASE = timedelta(seconds=10)
DEFAULT_HEARTBEAT_SECONDS = 2.0


@dataclass
class _Attempt:
    """What the lease keeper learns about the running attempt."""

    job_id: uuid.UUID
    number: int
    cancel_requested: bool = False
    lost: bool = False

    def checkpoint(self) -> None:
        """Stop the job here when its lease was lost or an operator cancelled it."""
        if self.lost:
            raise AttemptLost(f"attempt {self.number} lost its lease")
        if self.cancel_requested:
            raise JobCancelled("cancelled by an operator")


async def run_attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: JobRegistry,
    job_id: uuid.UUID,
    *,
    queue: JobQueue | None = None,
    lease: timedelta = DEFAULT_LEASE,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    clock: Clock = utcnow,
    observer: AttemptObserver | None = None,
) -> dict[str, Any] | None:
    """Run one attempt of a job under a lease; its effects commit only while it holds it.

    A delivery of a job that is done, running elsewhere or not due yet does nothing (the
    queue may deliver a job more than once), so only the row decides what runs. A failed
    attempt with attempts left puts the job back to pending and hands it to ``queue``
    after a back-off; without a queue, the sweep hands it over.
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
        if job.status != JobStatus.PENDING.value:
            return None
        if job.not_before is not None and job.not_before > now:
            # Delivered early (its start was pushed back): ring again when it is due.
            job.handovers += 1
            job.enqueued_at = now
            await session.commit()
            await _hand_over(queue, job)
            return None
        claimed = await repo.claim(job_id, now, lease)
        await session.commit()
    if claimed is None:
        return None

    attempt = _Attempt(job_id, claimed.attempts)
    keeper = asyncio.create_task(_keep_lease(sessionmaker, attempt, lease, heartbeat_seconds))
    started = time.perf_counter()

    def ended(outcome: str | None) -> None:
        if observer is not None and outcome is not None:
            observer.attempt_ended(claimed.name, outcome, time.perf_counter() - started)

    try:
        result = await _run_claimed(sessionmaker, registry, claimed, attempt, clock, queue)
        ended("succeeded")
        return result
    except asyncio.CancelledError:
        # The worker is stopping (or the queue's time limit struck): give the job back now
        # rather than when the lease lapses.
        await asyncio.shield(
            _settle(sessionmaker, queue, attempt, clock, "Attempt interrupted: its worker stopped.")
        )
        ended("interrupted")
        raise
    except JobCancelled:
        await _settle(sessionmaker, queue, attempt, clock, None, cancelled=True)
        ended("cancelled")
        return None
    except AttemptLost:
        log.warning("job.attempt_lost", job_id=str(job_id), attempt=attempt.number)
        ended("lost")
        return None
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:4000]
        log.warning(
            "job.attempt_failed",
            job_id=str(job_id),
            job_name=claimed.name,
            attempt=attempt.number,
            error=message,
            exc_info=True,
        )
        delay = (
            exc.delay_seconds
            if isinstance(exc, RetryLater)
            else min(MAX_RETRY_DELAY_SECONDS, 2.0**attempt.number)
        )
        status = await _settle(
            sessionmaker,
            queue,
            attempt,
            clock,
            message,
            delay=timedelta(seconds=delay),
            # No retry mends an unknown job, arguments that do not parse, or a rule they
            # break (a programme that no longer exists).
            final=isinstance(exc, LookupError | PermanentJobError | ValidationError),
        )
        ended(_OUTCOME_OF_STATUS.get(status or "", "lost"))
        return None
    finally:
        keeper.cancel()


# How an attempt that raised ended, by the status its job was left in.
_OUTCOME_OF_STATUS = {
    JobStatus.FAILED.value: "failed",
    JobStatus.PENDING.value: "retried",
    JobStatus.CANCELLED.value: "cancelled",
}


async def _run_claimed(
    sessionmaker: async_sessionmaker[AsyncSession],
    registry: JobRegistry,
    claimed: Job,
    attempt: _Attempt,
    clock: Clock,
    queue: JobQueue | None = None,
) -> dict[str, Any] | None:
    kind = registry.get(claimed.name)
    if kind is None:
        raise LookupError(f"no handler for job {claimed.name!r}")
    args = kind.args_model.model_validate(claimed.args)
    async with sessionmaker() as session:
        context = JobContext(
            session=session,
            job_id=claimed.id,
            attempt=attempt.number,
            now=claimed.started_at or clock(),
            report_progress=_progress_writer(sessionmaker, attempt),
            sessionmaker=sessionmaker,
        )
        result = await kind.run(context, args)
        # Fencing: the effects commit in the transaction that finds the row, under lock,
        # still on this attempt. An attempt the sweep gave away rolls back.
        job = await JobRepository(session).lock(claimed.id)
        if job is None or job.status != JobStatus.RUNNING.value or job.attempts != attempt.number:
            await session.rollback()
            raise AttemptLost(f"attempt {attempt.number} lost its lease")
        if job.cancel_requested:
            await session.rollback()
            raise JobCancelled("cancelled by an operator")
        job.status = JobStatus.SUCCEEDED.value
        job.result = result
        job.error = None
        job.lease_expires_at = None
        job.finished_at = clock()
        await session.commit()
        for written in written_by_hooks(session):
            await _hand_over(queue, written)
    log.info("job.succeeded", job_id=str(claimed.id), job_name=claimed.name, attempt=attempt.number)
    return result


async def _keep_lease(
    sessionmaker: async_sessionmaker[AsyncSession],
    attempt: _Attempt,
    lease: timedelta,
    every: float,
) -> None:
    """Renew the attempt's lease until cancelled; note a lost lease or a cancellation."""
    while True:
        await asyncio.sleep(every)
        try:
            async with sessionmaker() as session:
                asked = await JobRepository(session).renew_lease(
                    attempt.job_id, attempt.number, lease
                )
                await session.commit()
        except Exception:
            # The database is away: the job's own transaction will tell; keep trying.
            log.warning("job.lease_renewal_failed", job_id=str(attempt.job_id), exc_info=True)
            continue
        if asked is None:
            attempt.lost = True
            return
        attempt.cancel_requested = asked


def _progress_writer(
    sessionmaker: async_sessionmaker[AsyncSession], attempt: _Attempt
) -> ProgressReporter:
    async def write(progress: Progress) -> None:
        # Its own short transaction: readers see progress before the job's work commits.
        async with sessionmaker() as session:
            # A progress report is where a job stops when cancelled or superseded.
            repo = JobRepository(session)
            state = await repo.attempt_state(attempt.job_id)
            if state is None or (state.status, state.attempts) != (
                JobStatus.RUNNING.value,
                attempt.number,
            ):
                attempt.lost = True
            elif state.cancel_requested:
                attempt.cancel_requested = True
            attempt.checkpoint()
            await repo.write_progress(attempt.job_id, progress)
            await session.commit()

    return write


async def _settle(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue | None,
    attempt: _Attempt,
    clock: Clock,
    error: str | None,
    *,
    delay: timedelta | None = None,
    final: bool = False,
    cancelled: bool = False,
) -> str | None:
    """End an attempt that did not succeed: cancelled, back to pending, or failed; return
    the job's status (None: the attempt no longer held the job)."""
    now = clock()
    async with sessionmaker() as session:
        repo = JobRepository(session)
        job = await repo.lock(attempt.job_id)
        if job is None or job.status != JobStatus.RUNNING.value or job.attempts != attempt.number:
            return None
        if cancelled:
            _end(job, JobStatus.CANCELLED, "Cancelled by an operator while running.", now)
            again = False
        else:
            again = await _requeue_or_fail(repo, job, error or "", now, delay, final=final)
        await session.commit()
    log.info("job.settled", job_id=str(job.id), status=job.status, attempt=attempt.number)
    if again:
        await _hand_over(queue, job)
    return job.status


def _end(job: Job, status: JobStatus, error: str | None, now: datetime) -> None:
    job.status = status.value
    job.error = error
    job.lease_expires_at = None
    job.finished_at = now


async def _requeue_or_fail(
    repo: JobRepository,
    job: Job,
    error: str,
    now: datetime,
    delay: timedelta | None,
    *,
    final: bool = False,
) -> bool:
    """Put a job whose attempt ended badly back to pending; True when it is to be handed over.

    It fails when its attempts are spent, is cancelled when an operator asked, and gives
    way to a pending job with its key (one scheduled while it ran), which does its work.
    """
    if job.cancel_requested:
        _end(job, JobStatus.CANCELLED, f"Cancelled by an operator; last attempt: {error}", now)
        return False
    if final or job.attempts >= job.max_attempts:
        _end(job, JobStatus.FAILED, error, now)
        # Operators (and subscribers of job.failed) hear of it from the trail.
        AuditRepository(repo.session).record(
            actor_named(job.requested_by),
            "job.failed",
            "job",
            job.id,
            after={"name": job.name, "attempts": job.attempts, "error": error[:500]},
        )
        return False
    twin = await repo.pending_twin(job)
    if twin is not None:
        _end(job, JobStatus.CANCELLED, f"{error} Superseded by pending job {twin}.", now)
        return False
    job.status = JobStatus.PENDING.value
    job.error = error
    job.lease_expires_at = None
    job.not_before = now + delay if delay else None
    job.handovers += 1
    job.enqueued_at = now
    return True


async def _hand_over(queue: JobQueue | None, job: Job) -> bool:
    """Ring the queue's bell for the job; a failure is only logged (the sweep rings again)."""
    if queue is None:
        return False
    try:
        return await queue.enqueue(job.id, handover=job.handovers, not_before=job.not_before)
    except Exception:
        log.warning("job.handover_failed", job_id=str(job.id), exc_info=True)
        return False


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    *,
    grace: timedelta,
    clock: Clock = utcnow,
    limit: int = 1000,
) -> int:
    """Hand over again the pending jobs due but not started, and the running jobs whose lease
    lapsed; each gets a new hand-over number, so the queue cannot refuse it."""
    now = clock()
    lost = 0
    to_hand: list[Job] = []
    async with sessionmaker() as session:
        repo = JobRepository(session)
        due = await repo.due_for_sweep(now=now, grace=grace, limit=limit)
        db_now = await repo.database_now()
        for candidate in due:
            # Another sweep (or the job's own worker) holds it: leave it to them.
            job = await repo.lock(candidate.id, skip_locked=True)
            if job is None:
                continue
            if job.status == JobStatus.RUNNING.value:
                if job.lease_expires_at is not None and db_now and job.lease_expires_at >= db_now:
                    continue
                lost += 1
                error = f"Attempt {job.attempts} was lost: its worker stopped renewing the lease."
                if await _requeue_or_fail(repo, job, error, now, None):
                    to_hand.append(job)
            elif job.status == JobStatus.PENDING.value:
                job.handovers += 1
                job.enqueued_at = now
                to_hand.append(job)
        await session.commit()
    handed = 0
    for job in to_hand:
        handed += await _hand_over(queue, job)
    if to_hand or lost:
        log.info("jobs.swept", handed=handed, lost_attempts=lost, checked=len(due))
    return handed
