"""Long-lived resources of the API process, opened in the lifespan and shared by requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nscl_domain import embedded, schema
from nscl_domain.catalogue.seed import load_seed
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.jobs.registry import JobRegistry
from nscl_domain.jobs.service import DEFAULT_REGISTRY
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from nscl_worker.deps import WorkerDeps
from nscl_worker.inmemory import in_memory_arq_redis
from nscl_worker.queue import ArqJobQueue
from nscl_worker.settings import build_worker

log = structlog.get_logger(__name__)


@dataclass
class Resources:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    registry: JobRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)

    @property
    def queue(self) -> ArqJobQueue:
        return ArqJobQueue(self.redis, self.settings.queue_name)

    def new_uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessionmaker, self.queue, job_max_attempts=self.settings.job_max_tries
        )


async def resolve_database_url(settings: Settings) -> str:
    """Return the configured database, or start the embedded one, migrate and seed it."""
    if settings.database_url is not None:
        return str(settings.database_url)
    url = await asyncio.to_thread(embedded.start_postgres, settings.data_dir)
    await asyncio.to_thread(schema.upgrade, url)
    if settings.seed_on_start:
        engine = create_engine(url, pooled=False)
        try:
            async with create_sessionmaker(engine)() as session:
                await load_seed(session)
                await session.commit()
        finally:
            await engine.dispose()
    return url


async def connect_redis(settings: Settings) -> ArqRedis:
    if settings.redis_url is None:
        return in_memory_arq_redis()
    return await create_pool(RedisSettings.from_dsn(str(settings.redis_url)))


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open the database and Redis; on the in-memory Redis, run the worker in this process."""
    database_url = await resolve_database_url(settings)
    engine = create_engine(
        database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    redis = await connect_redis(settings)
    resources = Resources(
        settings=settings,
        database_url=database_url,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        redis=redis,
    )
    worker: Worker | None = None
    worker_task: asyncio.Task[None] | None = None
    try:
        if settings.uses_embedded_redis:
            worker = build_worker(
                settings,
                database_url=database_url,
                redis=redis,
                handle_signals=False,
                deps=WorkerDeps(
                    settings=settings,
                    engine=engine,
                    sessionmaker=resources.sessionmaker,
                    queue=resources.queue,
                    registry=resources.registry,
                ),
            )
            worker_task = asyncio.create_task(worker.async_run(), name="nscl-worker")
            log.info("worker.in_process", redis="in-memory")
        yield resources
    finally:
        if worker is not None and worker_task is not None:
            await worker.close()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
        else:
            await redis.aclose()
        await engine.dispose()
