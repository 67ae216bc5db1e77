"""SQL for schedules and the jobs they fire."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from nscl_domain.jobs.models import Job, JobSchedule
from nscl_domain.repositories import SessionRepository


class ScheduleRepository(SessionRepository):
    async def by_key(self, key: str, *, lock: bool = False) -> JobSchedule | None:
        stmt = select(JobSchedule).where(JobSchedule.key == key)
        if lock:
            stmt = stmt.with_for_update()
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        return result.one_or_none()

    async def insert(self, schedule: JobSchedule) -> None:
        """Add the schedule and write it now (its id and defaults come back)."""
        self.session.add(schedule)
        await self.session.flush()

    async def delete(self, schedule: JobSchedule) -> None:
        await self.session.delete(schedule)
        await self.session.flush()

    async def ensure(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add the schedules whose key is new; an existing one (perhaps paused or changed by
        an operator) stays as it is."""
        if rows:
            await self.session.execute(
                insert(JobSchedule)
                .values(list(rows))
                .on_conflict_do_nothing(index_elements=[JobSchedule.key])
            )

    async def all(self) -> Sequence[JobSchedule]:
        return (await self.session.scalars(select(JobSchedule).order_by(JobSchedule.key))).all()

    async def lock_enabled(self) -> Sequence[JobSchedule]:
        """The enabled schedules no other scheduler holds right now, held until the commit.

        A schedule another worker is firing is skipped: that worker fires it, and the
        unique (schedule, fire time) index refuses a second firing anyway.
        """
        stmt = (
            select(JobSchedule)
            .where(JobSchedule.enabled.is_(True))
            .order_by(JobSchedule.key)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        return result.all()

    async def add_firing(
        self,
        *,
        schedule: JobSchedule,
        fire_at: datetime,
        max_attempts: int,
        requested_by: str,
        args: dict[str, Any] | None = None,
    ) -> Job | None:
        """Write the job of one fire time; None when that fire time has its job already."""
        stmt = (
            insert(Job)
            .values(
                name=schedule.job_name,
                args=schedule.args if args is None else args,
                max_attempts=max_attempts,
                requested_by=requested_by,
                schedule_id=schedule.id,
                fire_at=fire_at,
            )
            .on_conflict_do_nothing(
                index_elements=[Job.schedule_id, Job.fire_at],
                # Literal SQL: PostgreSQL matches a partial index only on a constant predicate.
                index_where=text("schedule_id IS NOT NULL"),
            )
            .returning(Job)
        )
        result = await self.session.scalars(stmt, execution_options={"populate_existing": True})
        return result.one_or_none()

    async def runs(self, schedule_ids: Sequence[uuid.UUID], per_schedule: int) -> list[Job]:
        """The latest ``per_schedule`` jobs each schedule fired, newest fire time first."""
        if not schedule_ids or per_schedule <= 0:
            return []
        ranked = (
            select(
                Job.id,
                func.row_number()
                .over(partition_by=Job.schedule_id, order_by=Job.fire_at.desc())
                .label("n"),
            )
            .where(Job.schedule_id.in_(schedule_ids))
            .subquery()
        )
        stmt = (
            select(Job)
            .join(ranked, ranked.c.id == Job.id)
            .where(ranked.c.n <= per_schedule)
            .order_by(Job.schedule_id, Job.fire_at.desc())
        )
        return list((await self.session.scalars(stmt)).all())
