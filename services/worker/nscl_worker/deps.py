"""What the worker's job functions share: built once at start-up, closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.jobs import JobQueue
from nscl_domain.jobs.registry import JobRegistry
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork


@dataclass
class WorkerDeps:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: JobQueue
    registry: JobRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)

    def new_uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessionmaker, self.queue, job_max_attempts=self.settings.job_max_tries
        )
