"""Durable jobs on the real arq worker and the real Redis: no job lost, none run twice in effect."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nscl_api.resources import Resources
from nscl_domain.identity import SYSTEM
from nscl_domain.jobs import JobStatus
from nscl_domain.jobs import service as jobs
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext, JobKind, JobRegistry
from nscl_domain.jobs.service import DEFAULT_REGISTRY
from nscl_domain.schema import SchemaOutOfDate
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from nscl_worker.deps import WorkerDeps
from nscl_worker.queue import ArqJobQueue, arq_job_id
from nscl_worker.settings import build_worker, database_deps

EFFECT_TABLE = "test_job_effect"


class NoArgs(BaseModel):
    pass


class FailingArgs(BaseModel):
    failures: int = 0


async def _append_effect(ctx: JobContext, args: NoArgs) -> dict[str, Any]:
    """A job whose every run leaves a row: effects are counted, not assumed."""
    await ctx.session.execute(
        text(f"INSERT INTO {EFFECT_TABLE} (job_id) VALUES (:job_id)"), {"job_id": ctx.job_id}
    )
    return {"appended": str(ctx.job_id)}


async def _fail_then_append(ctx: JobContext, args: FailingArgs) -> dict[str, Any]:
    if ctx.attempt <= args.failures:
        raise RuntimeError(f"transient failure on attempt {ctx.attempt}")
    return await _append_effect(ctx, NoArgs())


REGISTRY: JobRegistry = {
    **DEFAULT_REGISTRY,
    "test.append": JobKind("test.append", NoArgs, _append_effect, "test"),
    "test.flaky": JobKind("test.flaky", FailingArgs, _fail_then_append, "test"),
}


@pytest.fixture
async def effects(owner_engine: AsyncEngine) -> AsyncIterator[None]:
    # The service role creates no tables: the owner does, and its default privileges let
    # the worker write to it.
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {EFFECT_TABLE} (job_id uuid)"))
        await conn.execute(text(f"TRUNCATE {EFFECT_TABLE}"))
    yield
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {EFFECT_TABLE}"))


def _deps(resources: Resources) -> WorkerDeps:
    return WorkerDeps(
        settings=resources.settings,
        engine=resources.engine,
        sessionmaker=resources.sessionmaker,
        queue=resources.queue,
        registry=REGISTRY,
    )


async def run_worker_until_idle(resources: Resources) -> None:
    """Run the real arq worker in burst mode: it stops when the queue is empty."""
    worker = build_worker(
        resources.settings,
        database_url=resources.database_url,
        redis=resources.redis,
        burst=True,
        with_cron=False,
        deps=_deps(resources),
    )
    await worker.main()


async def effect_count(engine: AsyncEngine, job_id: uuid.UUID) -> int:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT count(*) FROM {EFFECT_TABLE} WHERE job_id = :id"), {"id": job_id}
        )
        return int(result.scalar_one())


async def schedule(resources: Resources, name: str, args: dict[str, Any], **uow_kw: Any) -> Job:
    uow = UnitOfWork(resources.sessionmaker, resources.queue, **uow_kw)
    async with uow:
        job = await uow.schedule(name, args)
        await uow.commit()
    return job


async def stored(resources: Resources, job_id: uuid.UUID) -> Job:
    return await jobs.get(resources.new_uow(), SYSTEM, job_id)


async def sweep(resources: Resources) -> int:
    return await jobs.sweep(
        resources.sessionmaker,
        resources.queue,
        grace=timedelta(0),
        running_timeout=timedelta(minutes=10),
    )


@pytest.mark.usefixtures("effects")
class TestDurableJobs:
    async def test_committed_job_is_queued_and_runs_once(
        self, committed_resources: Resources
    ) -> None:
        job = await schedule(committed_resources, "test.append", {})
        assert (await stored(committed_resources, job.id)).enqueued_at is not None

        await run_worker_until_idle(committed_resources)

        done = await stored(committed_resources, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 1
        assert done.result == {"appended": str(job.id)}
        assert done.started_at is not None
        assert done.finished_at is not None
        assert await effect_count(committed_resources.engine, job.id) == 1

    async def test_job_lost_by_redis_flushall_still_runs_exactly_once(
        self, committed_resources: Resources, redis: ArqRedis
    ) -> None:
        job = await schedule(committed_resources, "test.append", {})
        await redis.flushall()

        await run_worker_until_idle(committed_resources)
        assert await effect_count(committed_resources.engine, job.id) == 0
        assert (await stored(committed_resources, job.id)).status == JobStatus.PENDING

        assert await sweep(committed_resources) == 1
        await run_worker_until_idle(committed_resources)
        assert await effect_count(committed_resources.engine, job.id) == 1

        # A second delivery (Redis lost the finished job's result too) changes nothing.
        await redis.flushall()
        assert await committed_resources.queue.enqueue(job.id)
        await run_worker_until_idle(committed_resources)
        assert await effect_count(committed_resources.engine, job.id) == 1
        done = await stored(committed_resources, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 1

    async def test_queue_drops_a_job_id_it_already_holds(
        self, committed_resources: Resources, redis: ArqRedis
    ) -> None:
        job = await schedule(committed_resources, "test.append", {})
        assert await redis.exists(f"arq:job:{arq_job_id(job.id)}")
        assert not await committed_resources.queue.enqueue(job.id)
        assert await sweep(committed_resources) == 0

    async def test_failed_attempt_is_retried_and_recorded(
        self, committed_resources: Resources
    ) -> None:
        job = await schedule(committed_resources, "test.flaky", {"failures": 1})
        await run_worker_until_idle(committed_resources)
        done = await stored(committed_resources, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 2
        assert done.error is None
        assert await effect_count(committed_resources.engine, job.id) == 1

    async def test_job_failing_every_attempt_ends_failed_with_its_error(
        self, committed_resources: Resources
    ) -> None:
        job = await schedule(
            committed_resources, "test.flaky", {"failures": 99}, job_max_attempts=2
        )
        await run_worker_until_idle(committed_resources)
        done = await stored(committed_resources, job.id)
        assert done.status == JobStatus.FAILED
        assert done.attempts == 2
        assert done.error is not None
        assert "transient failure on attempt 2" in done.error
        assert await effect_count(committed_resources.engine, job.id) == 0
        # A failed job is final: the sweep leaves it alone.
        assert await sweep(committed_resources) == 0

    async def test_jobs_with_one_dedup_key_collapse_into_one(
        self, committed_resources: Resources
    ) -> None:
        uow = committed_resources.new_uow()
        async with uow:
            first = await uow.schedule("test.append", {}, dedup_key="rollup:2024")
            second = await uow.schedule(
                "test.append", {}, dedup_key="rollup:2024", delay=timedelta(seconds=1)
            )
            await uow.commit()
        assert first.id == second.id
        assert second.not_before is not None

    async def test_an_overdue_debounced_job_is_swept_and_runs(
        self, committed_resources: Resources, redis: ArqRedis
    ) -> None:
        uow = committed_resources.new_uow()
        async with uow:
            # Its start time has passed: Redis lost it while it waited for its turn.
            job = await uow.schedule(
                "test.append", {}, dedup_key="late", delay=timedelta(seconds=-60)
            )
            await uow.commit()
        await redis.flushall()
        assert await sweep(committed_resources) == 1
        await run_worker_until_idle(committed_resources)
        assert await effect_count(committed_resources.engine, job.id) == 1


@pytest.mark.usefixtures("effects")
class TestPrune:
    async def test_prune_deletes_only_old_finished_jobs(
        self, committed_resources: Resources
    ) -> None:
        old = await schedule(committed_resources, "test.append", {})
        fresh = await schedule(committed_resources, "test.append", {})
        pending = await schedule(committed_resources, "test.append", {})
        async with committed_resources.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE job SET status = 'succeeded', finished_at = now() - "
                    "CASE WHEN id = :old THEN interval '40 days' ELSE interval '1 day' END "
                    "WHERE id IN (:old, :fresh)"
                ),
                {"old": old.id, "fresh": fresh.id},
            )
        prune = await schedule(committed_resources, "jobs.prune", {"older_than_days": 30})
        await run_worker_until_idle(committed_resources)

        done = await stored(committed_resources, prune.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.result is not None
        assert done.result["deleted"] == 1
        remaining = {job.id for job in await jobs.list_jobs(committed_resources.new_uow(), SYSTEM)}
        assert old.id not in remaining
        assert {fresh.id, pending.id, prune.id} <= remaining


class TestWorkerStartup:
    async def test_refuses_a_schema_older_than_the_code(
        self, settings: Settings, redis: ArqRedis, scratch_database: str
    ) -> None:
        with pytest.raises(SchemaOutOfDate, match="run `nscl db upgrade`"):
            await database_deps(settings, scratch_database, redis, DEFAULT_REGISTRY)

    async def test_starts_on_a_current_schema(
        self, settings: Settings, redis: ArqRedis, database_url: str
    ) -> None:
        deps = await database_deps(settings, database_url, redis, DEFAULT_REGISTRY)
        assert isinstance(deps.queue, ArqJobQueue)
        await deps.engine.dispose()
