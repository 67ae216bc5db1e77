"""Unit of work: one transaction, its repositories, and the outbox relay after commit."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from nscl_domain.clock import Clock, utcnow
from nscl_domain.jobs import JobQueue
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.repositories import R, Repositories

log = structlog.get_logger(__name__)

OUTBOX_HANDOVERS = "nscl.outbox.handovers"
"""Key of the session's ``info`` where commit hooks name the jobs they wrote, for the
unit of work (or the job runner) to hand them to the queue after the commit."""


def written_by_hooks(session: AsyncSession) -> list[Job]:
    """The jobs commit hooks wrote in the transaction just committed (and forget them)."""
    found: list[Job] = session.info.pop(OUTBOX_HANDOVERS, [])
    return found


class UnitOfWork:
    """Open with ``async with uow:``, change things, ``await uow.commit()`` once.

    Jobs scheduled with :meth:`schedule` are rows in the same transaction as the change
    that needs them; after the commit they are handed to the queue. A failed hand-over is
    only logged: the worker's sweep hands the job over later.

    The session is the unit of work's own: use cases reach the data through ``get``.
    """

    _session: AsyncSession

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: JobQueue | None = None,
        *,
        clock: Clock = utcnow,
        job_max_attempts: int = 5,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._queue = queue
        self._clock = clock
        self._job_max_attempts = job_max_attempts
        self._scheduled: list[Job] = []

    async def __aenter__(self) -> Self:
        self._session = self._sessionmaker()
        self._repositories = Repositories(self._session)
        self._scheduled = []
        return self

    def get(self, repository: type[R]) -> R:
        """This transaction's ``repository`` (built on its session once, then reused)."""
        return self._repositories.get(repository)

    @property
    def jobs(self) -> JobRepository:
        """The outbox: jobs written in this transaction are handed over after the commit."""
        return self.get(JobRepository)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Closing without a commit discards the transaction; unlike rollback() it leaves
        # loaded objects readable (detached), which read-only use cases return.
        try:
            if exc is not None:
                await self._session.rollback()
        finally:
            await self._session.close()

    @property
    def job_max_attempts(self) -> int:
        """Attempts a job gets: when scheduled, and again when an operator retries it."""
        return self._job_max_attempts

    def hand_over(self, job: Job) -> None:
        """Hand the job to the queue after the commit (it was put back to pending)."""
        self._scheduled.append(job)

    def now(self) -> datetime:
        return self._clock()

    async def schedule(
        self,
        name: str,
        args: dict[str, Any],
        *,
        dedup_key: str | None = None,
        delay: timedelta | None = None,
        requested_by: str | None = None,
    ) -> Job:
        """Write a job to the outbox in this transaction."""
        job = await self.jobs.add(
            name=name,
            args=args,
            dedup_key=dedup_key,
            not_before=self.now() + delay if delay else None,
            max_attempts=self._job_max_attempts,
            requested_by=requested_by,
        )
        self._scheduled.append(job)
        return job

    async def commit(self) -> None:
        """Commit the transaction, then hand the jobs it scheduled to the queue."""
        await self._session.commit()
        scheduled, self._scheduled = self._scheduled, []
        scheduled += written_by_hooks(self._session)
        if not scheduled or self._queue is None:
            return
        handed = []
        for job in scheduled:
            try:
                await self._queue.enqueue(job.id, handover=job.handovers, not_before=job.not_before)
                handed.append(job.id)
            except Exception:
                log.warning("job.relay_failed", job_id=str(job.id), exc_info=True)
        if handed:
            await self.jobs.mark_enqueued(handed, self.now())
            await self._session.commit()
