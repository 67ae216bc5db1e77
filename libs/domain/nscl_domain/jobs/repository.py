"""SQL for the job table."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.jobs import JobStatus
from nscl_domain.jobs.models import Job, JobProgress


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        name: str,
        args: dict[str, Any],
        dedup_key: str | None,
        not_before: datetime | None,
        max_attempts: int,
        requested_by: str | None,
    ) -> Job:
        """Insert a pending job; with a dedup key, join the pending job that has it already."""
        values = {
            "name": name,
            "args": args,
            "dedup_key": dedup_key,
            "not_before": not_before,
            "max_attempts": max_attempts,
            "requested_by": requested_by,
        }
        if dedup_key is None:
            job = Job(**values)
            self.session.add(job)
            await self.session.flush()
            return job
        stmt = (
            insert(Job)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[Job.name, Job.dedup_key],
                # Literal SQL: PostgreSQL matches a partial index only on a constant predicate.
                index_where=text("status = 'pending' AND dedup_key IS NOT NULL"),
                # Debounce: the later change pushes the shared job's start back.
                set_={"not_before": func.greatest(Job.not_before, insert(Job).excluded.not_before)},
            )
            .returning(Job)
        )
        return (
            await self.session.scalars(stmt, execution_options={"populate_existing": True})
        ).one()

    async def get(self, job_id: uuid.UUID) -> Job | None:
        return await self.session.get(Job, job_id, populate_existing=True)

    async def requester(self, job_id: uuid.UUID) -> str | None:
        """Who asked for the job (None: no such job, or none named), as this transaction
        holds the row (not re-read: a running attempt's own changes to it stay)."""
        job = await self.session.get(Job, job_id)
        return job.requested_by if job is not None else None

    async def attempt_state(self, job_id: uuid.UUID) -> Row[str, int, bool] | None:
        """The job's status, attempt number and cancel flag, as committed (None: no job)."""
        return (
            await self.session.execute(
                select(Job.status, Job.attempts, Job.cancel_requested).where(Job.id == job_id)
            )
        ).one_or_none()

    async def write_progress(self, job_id: uuid.UUID, progress: Mapping[str, Any]) -> None:
        """Replace what the running job last said of its progress."""
        await self.session.execute(
            insert(JobProgress)
            .values(job_id=job_id, progress=progress)
            .on_conflict_do_update(
                index_elements=[JobProgress.job_id],
                set_={"progress": progress, "updated_at": func.now()},
            )
        )

    async def database_now(self) -> datetime | None:
        """The database's clock, which leases are compared against."""
        return await self.session.scalar(select(func.now()))

    async def progress(self, job_id: uuid.UUID) -> dict[str, Any] | None:
        """What a running job last said of its progress (None until it says something)."""
        return await self.session.scalar(
            select(JobProgress.progress).where(JobProgress.job_id == job_id)
        )

    async def list(
        self,
        *,
        status: JobStatus | None,
        name: str | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[Job]:
        """Newest first; ids are time-ordered, so keyset pagination runs on the primary key."""
        stmt = select(Job).order_by(Job.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(Job.status == status.value)
        if name is not None:
            stmt = stmt.where(Job.name == name)
        if before_id is not None:
            stmt = stmt.where(Job.id < before_id)
        return (await self.session.scalars(stmt)).all()

    async def claim(self, job_id: uuid.UUID, now: datetime, lease: timedelta) -> Job | None:
        """Start an attempt of a pending, due job under a lease; None when it is not to start."""
        stmt = (
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.PENDING.value,
                or_(Job.not_before.is_(None), Job.not_before <= now),
            )
            .values(
                status=JobStatus.RUNNING.value,
                attempts=Job.attempts + 1,
                started_at=now,
                finished_at=None,
                # Database time: every worker's lease is read against one clock.
                lease_expires_at=func.now() + lease,
            )
            .returning(Job)
        )
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        return result.one_or_none()

    async def renew_lease(self, job_id: uuid.UUID, attempt: int, lease: timedelta) -> bool | None:
        """Extend the attempt's lease; return whether cancellation was asked, None if lost."""
        stmt = (
            update(Job)
            .where(
                Job.id == job_id,
                Job.attempts == attempt,
                Job.status == JobStatus.RUNNING.value,
            )
            .values(lease_expires_at=func.now() + lease)
            .returning(Job.cancel_requested)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock(self, job_id: uuid.UUID, *, skip_locked: bool = False) -> Job | None:
        """Hold the job's row for the rest of the transaction."""
        stmt = select(Job).where(Job.id == job_id).with_for_update(skip_locked=skip_locked)
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        return result.one_or_none()

    async def pending_twin(self, job: Job) -> uuid.UUID | None:
        """Another pending job with the job's dedup key: it does the same work later."""
        if job.dedup_key is None:
            return None
        return await self.session.scalar(
            select(Job.id).where(
                Job.name == job.name,
                Job.dedup_key == job.dedup_key,
                Job.status == JobStatus.PENDING.value,
                Job.id != job.id,
            )
        )

    async def mark_enqueued(self, job_ids: Sequence[uuid.UUID], now: datetime) -> None:
        if job_ids:
            await self.session.execute(
                update(Job).where(Job.id.in_(job_ids)).values(enqueued_at=now)
            )

    async def due_for_sweep(self, *, now: datetime, grace: timedelta, limit: int) -> Sequence[Job]:
        """Pending jobs due a while ago and not handed over since, and running jobs whose
        lease lapsed (their worker stopped renewing it)."""
        started_by = func.greatest(
            func.coalesce(Job.not_before, Job.created_at),
            func.coalesce(Job.enqueued_at, Job.created_at),
        )
        stmt = (
            select(Job)
            .where(
                or_(
                    (Job.status == JobStatus.PENDING.value) & (started_by < now - grace),
                    (Job.status == JobStatus.RUNNING.value)
                    & or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < func.now()),
                )
            )
            .order_by(Job.created_at)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def delete_finished_before(self, cutoff: datetime) -> int:
        final = [s.value for s in JobStatus if s.is_final]
        result = await self.session.execute(
            delete(Job).where(Job.status.in_(final), Job.finished_at < cutoff)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount

    async def counts(self) -> Sequence[tuple[str, str, int]]:
        """Jobs by name and status, as the table holds them now."""
        rows = await self.session.execute(
            select(Job.name, Job.status, func.count()).group_by(Job.name, Job.status)
        )
        return [(name, status, int(n)) for name, status, n in rows]

    async def oldest_due_pending_age(self) -> float:
        """Seconds the longest-waiting pending job has been due (0: none waits): the lag
        between the outbox and the workers."""
        due = func.coalesce(Job.not_before, Job.created_at)
        age = await self.session.scalar(
            select(func.extract("epoch", func.now() - func.min(due))).where(
                Job.status == JobStatus.PENDING.value, due <= func.now()
            )
        )
        return max(0.0, float(age)) if age is not None else 0.0
