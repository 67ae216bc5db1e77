"""One process's wiring: settings → engine → unit-of-work factory → queue.

The API, the worker and the command line each build their database access through here,
so a pool size, a retry budget or a clock means the same in all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nscl_domain.clock import Clock, utcnow
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.jobs import JobQueue
from nscl_domain.jobs.registry import JobRegistry
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork


def open_engine(settings: Settings, database_url: str, *, pooled: bool = True) -> AsyncEngine:
    """The engine of a long-lived process (pooled as the settings say) or of one command."""
    if not pooled:
        return create_engine(database_url, pooled=False)
    return create_engine(
        database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )


def unit_of_work_factory(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue | None,
    clock: Clock = utcnow,
) -> UnitOfWork:
    """A unit of work on the process's sessions, relaying its jobs to ``queue``."""
    return UnitOfWork(sessionmaker, queue, clock=clock, job_max_attempts=settings.job_max_tries)


@dataclass
class Process:
    """What a process that runs use cases holds: its engine, sessions, queue and jobs."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: JobQueue | None
    registry: JobRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)
    clock: Clock = utcnow

    def new_uow(self) -> UnitOfWork:
        """A fresh unit of work (one per use case)."""
        return unit_of_work_factory(self.settings, self.sessionmaker, self.queue, self.clock)


def open_process(
    settings: Settings,
    database_url: str,
    queue: JobQueue | None = None,
    *,
    pooled: bool = True,
    registry: JobRegistry | None = None,
) -> Process:
    """Build a process's database access; the caller disposes of ``engine`` at the end."""
    engine = open_engine(settings, database_url, pooled=pooled)
    return Process(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        queue=queue,
        registry=DEFAULT_REGISTRY if registry is None else registry,
    )
