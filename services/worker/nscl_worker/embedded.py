"""The embedded default's queue and worker, run inside the API's process.

Without NSCL_REDIS_URL the queue is an in-memory Redis that only this process sees, so
the worker must run here too. The API's entry points hand this companion to the API,
which never imports the worker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from arq.connections import ArqRedis

from nscl_domain.composition.process import Process
from nscl_domain.composition.registry import registry_for
from nscl_domain.settings import Settings
from nscl_worker.deps import WorkerDeps
from nscl_worker.inmemory import in_memory_arq_redis
from nscl_worker.queue import ArqJobQueue
from nscl_worker.settings import build_worker

log = structlog.get_logger(__name__)


class InProcessWorker:
    """An in-memory Redis and a worker on it, sharing the API's database pool."""

    def redis(self) -> ArqRedis:
        """The in-memory Redis the API and the worker share."""
        return in_memory_arq_redis()

    @contextlib.asynccontextmanager
    async def run(
        self, settings: Settings, database_url: str, redis: ArqRedis, process: Process
    ) -> AsyncIterator[None]:
        """Run the worker for the life of the block; closing it closes ``redis``."""
        worker = build_worker(
            settings,
            database_url=database_url,
            redis=redis,
            handle_signals=False,
            deps=WorkerDeps(
                settings=settings,
                engine=process.engine,
                sessionmaker=process.sessionmaker,
                queue=ArqJobQueue(redis, settings.queue_name),
                # As a separate worker would: webhooks and upstream pushes as configured.
                registry=registry_for(settings),
            ),
        )
        task = asyncio.create_task(worker.async_run(), name="nscl-worker")
        log.info("worker.in_process", redis="in-memory")
        try:
            yield
        finally:
            await worker.close()
            with contextlib.suppress(asyncio.CancelledError):
                await task
