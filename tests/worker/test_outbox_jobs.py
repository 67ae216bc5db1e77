"""Durable jobs on the real arq worker and the real Redis: no job lost, none run twice in effect.

Each test runs its own arq queue, and "Redis lost its contents" deletes only the keys of
the test's own jobs: the machine's Redis is shared.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from arq.connections import ArqRedis
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nscl_api.resources import Resources
from nscl_domain.clock import utcnow
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.errors import Conflict
from nscl_domain.identity import SYSTEM
from nscl_domain.jobs import JobStatus
from nscl_domain.jobs import service as jobs
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext, JobKind, JobRegistry
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.repositories import SessionRepository
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


class _Effects(SessionRepository):
    """The test's own statements in a job's transaction, and the sessionmaker beside it
    (for a handler that acts as another process would: a sweep, an operator's cancel)."""

    takes_another_session: ClassVar[bool] = True

    def __init__(
        self,
        session: AsyncSession,
        *,
        another_session: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        super().__init__(session)
        self.sessionmaker = another_session

    async def append(self, job_id: uuid.UUID) -> None:
        await self.session.execute(
            text(f"INSERT INTO {EFFECT_TABLE} (job_id) VALUES (:job_id)"), {"job_id": job_id}
        )


async def _append_effect(ctx: JobContext, args: NoArgs) -> dict[str, Any]:
    """A job whose every run leaves a row: effects are counted, not assumed."""
    await ctx.get(_Effects).append(ctx.job_id)
    return {"appended": str(ctx.job_id)}


async def _fail_then_append(ctx: JobContext, args: FailingArgs) -> dict[str, Any]:
    if ctx.attempt <= args.failures:
        raise RuntimeError(f"transient failure on attempt {ctx.attempt}")
    return await _append_effect(ctx, NoArgs())


async def _lose_lease_first(ctx: JobContext, args: NoArgs) -> dict[str, Any]:
    """On its first attempt, the job's lease lapses mid-run and the sweep gives it away."""
    if ctx.attempt == 1:
        sessionmaker = ctx.get(_Effects).sessionmaker
        assert sessionmaker is not None
        async with sessionmaker() as other:
            await other.execute(
                text(
                    "UPDATE job SET lease_expires_at = now() - interval '1 second' WHERE id = :id"
                ),
                {"id": ctx.job_id},
            )
            await other.commit()
        await jobs.sweep(sessionmaker, _NO_QUEUE, grace=timedelta(0))
    return await _append_effect(ctx, NoArgs())


async def _cancelled_midway(ctx: JobContext, args: NoArgs) -> dict[str, Any]:
    """An operator cancels the job while it runs; it reports progress after that."""
    sessionmaker = ctx.get(_Effects).sessionmaker
    assert sessionmaker is not None
    assert ctx.report_progress is not None
    await _append_effect(ctx, NoArgs())
    await jobs.cancel(UnitOfWork(sessionmaker), SYSTEM, ctx.job_id)
    await ctx.report_progress({"stage": "after cancellation", "done": 1, "total": 1})
    return {"finished": True}


class _NoQueue:
    async def enqueue(self, job_id: uuid.UUID, **kwargs: Any) -> bool:
        return False


_NO_QUEUE = _NoQueue()

REGISTRY: JobRegistry = {
    **DEFAULT_REGISTRY,
    "test.append": JobKind("test.append", NoArgs, _append_effect, "test"),
    "test.flaky": JobKind("test.flaky", FailingArgs, _fail_then_append, "test"),
    "test.lose_lease": JobKind("test.lose_lease", NoArgs, _lose_lease_first, "test"),
    "test.cancelled": JobKind("test.cancelled", NoArgs, _cancelled_midway, "test"),
}


@pytest.fixture
async def own_queue(committed_resources: Resources, redis: ArqRedis) -> AsyncIterator[Resources]:
    """Resources on an arq queue of the test's own, so no other test's worker takes its jobs."""
    settings = committed_resources.settings.model_copy(
        update={"queue_name": f"nscl:test:jobs:{uuid.uuid4().hex[:8]}"}
    )
    yield dataclasses.replace(committed_resources, settings=settings)
    await redis.delete(settings.queue_name)


async def forget(redis: ArqRedis, resources: Resources, *job_ids: uuid.UUID) -> None:
    """Redis loses what it held of these jobs (as on a restart without persistence)."""
    await redis.delete(resources.settings.queue_name)
    for job_id in job_ids:
        keys = [key async for key in redis.scan_iter(match=f"arq:*job:{job_id}:*")]
        if keys:
            await redis.delete(*keys)


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
    return await jobs.sweep(resources.sessionmaker, resources.queue, grace=timedelta(0))


async def start_and_die(resources: Resources, job_id: uuid.UUID) -> None:
    """An attempt starts under a lease, then its worker dies and the lease lapses."""
    async with resources.sessionmaker() as session:
        claimed = await JobRepository(session).claim(job_id, utcnow(), timedelta(seconds=10))
        assert claimed is not None
        await session.commit()
    async with resources.engine.begin() as conn:
        await conn.execute(
            text("UPDATE job SET lease_expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": job_id},
        )


@pytest.mark.usefixtures("effects")
class TestDurableJobs:
    async def test_committed_job_is_queued_and_runs_once(self, own_queue: Resources) -> None:
        job = await schedule(own_queue, "test.append", {})
        assert (await stored(own_queue, job.id)).enqueued_at is not None

        await run_worker_until_idle(own_queue)

        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 1
        assert done.result == {"appended": str(job.id)}
        assert done.started_at is not None
        assert done.finished_at is not None
        assert await effect_count(own_queue.engine, job.id) == 1

    async def test_job_lost_by_redis_still_runs_exactly_once(
        self, own_queue: Resources, redis: ArqRedis
    ) -> None:
        job = await schedule(own_queue, "test.append", {})
        await forget(redis, own_queue, job.id)

        await run_worker_until_idle(own_queue)
        assert await effect_count(own_queue.engine, job.id) == 0
        assert (await stored(own_queue, job.id)).status == JobStatus.PENDING

        assert await sweep(own_queue) == 1
        await run_worker_until_idle(own_queue)
        assert await effect_count(own_queue.engine, job.id) == 1

        # A second delivery (Redis lost the finished job's result too) changes nothing.
        await forget(redis, own_queue, job.id)
        assert await own_queue.queue.enqueue(job.id)
        await run_worker_until_idle(own_queue)
        assert await effect_count(own_queue.engine, job.id) == 1
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 1

    async def test_what_redis_keeps_of_a_hand_over_never_blocks_the_next(
        self, own_queue: Resources, redis: ArqRedis
    ) -> None:
        job = await schedule(own_queue, "test.append", {})
        # arq still holds the first hand-over (as it keeps a failed result for an hour) but
        # no longer queues it.
        assert await redis.exists(f"arq:job:{arq_job_id(job.id, 0)}")
        await redis.delete(own_queue.settings.queue_name)
        assert not await own_queue.queue.enqueue(job.id, handover=0)

        assert await sweep(own_queue) == 1
        await run_worker_until_idle(own_queue)
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.handovers == 1
        assert await effect_count(own_queue.engine, job.id) == 1

    async def test_a_job_whose_worker_died_is_handed_over_once_its_lease_lapses(
        self, own_queue: Resources
    ) -> None:
        job = await schedule(own_queue, "test.append", {})
        async with own_queue.sessionmaker() as session:
            assert await JobRepository(session).claim(job.id, utcnow(), timedelta(seconds=30))
            await session.commit()
        # The lease still runs: the attempt may be alive, the sweep leaves it alone.
        assert await sweep(own_queue) == 0
        async with own_queue.engine.begin() as conn:
            await conn.execute(
                text("UPDATE job SET lease_expires_at = now() - interval '1 s' WHERE id = :id"),
                {"id": job.id},
            )
        assert await sweep(own_queue) == 1
        await run_worker_until_idle(own_queue)
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 2
        assert done.lease_expires_at is None
        assert await effect_count(own_queue.engine, job.id) == 1

    async def test_an_attempt_that_lost_its_lease_cannot_commit_its_effects(
        self, own_queue: Resources
    ) -> None:
        job = await schedule(own_queue, "test.lose_lease", {})
        await run_worker_until_idle(own_queue)
        # Attempt 1 finished its work after the sweep gave the job away: rolled back.
        assert (await stored(own_queue, job.id)).status == JobStatus.PENDING
        assert await effect_count(own_queue.engine, job.id) == 0

        assert await sweep(own_queue) == 1
        await run_worker_until_idle(own_queue)
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 2
        assert await effect_count(own_queue.engine, job.id) == 1

    async def test_lost_attempts_end_failed_and_an_operator_retry_runs_it(
        self, own_queue: Resources
    ) -> None:
        job = await schedule(own_queue, "test.append", {}, job_max_attempts=2)
        await start_and_die(own_queue, job.id)
        assert await sweep(own_queue) == 1
        await start_and_die(own_queue, job.id)
        assert await sweep(own_queue) == 0

        failed = await stored(own_queue, job.id)
        assert failed.status == JobStatus.FAILED
        assert failed.attempts == 2
        assert failed.error is not None
        assert "Attempt 2 was lost" in failed.error

        retried = await jobs.retry(own_queue.new_uow(), SYSTEM, job.id)
        assert retried.status == JobStatus.PENDING
        assert retried.max_attempts > retried.attempts
        await run_worker_until_idle(own_queue)
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 3
        assert await effect_count(own_queue.engine, job.id) == 1

    async def test_only_failed_or_cancelled_jobs_can_be_retried(self, own_queue: Resources) -> None:
        job = await schedule(own_queue, "test.append", {})
        with pytest.raises(Conflict) as refused:
            await jobs.retry(own_queue.new_uow(), SYSTEM, job.id)
        assert refused.value.code == "job_not_retryable"

    async def test_a_running_job_cancelled_by_an_operator_ends_cancelled_without_effects(
        self, own_queue: Resources
    ) -> None:
        job = await schedule(own_queue, "test.cancelled", {})
        await run_worker_until_idle(own_queue)
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.CANCELLED
        assert done.cancel_requested
        assert done.finished_at is not None
        assert await effect_count(own_queue.engine, job.id) == 0
        with pytest.raises(Conflict):
            await jobs.cancel(own_queue.new_uow(), SYSTEM, job.id)

    async def test_a_change_after_a_failed_refresh_schedules_a_new_one(
        self, own_queue: Resources
    ) -> None:
        uow = own_queue.new_uow()
        async with uow:
            first = await uow.schedule("test.append", {}, dedup_key="rollup:x:2024")
            await uow.commit()
        async with own_queue.engine.begin() as conn:
            await conn.execute(
                text("UPDATE job SET status = 'failed', finished_at = now() WHERE id = :id"),
                {"id": first.id},
            )
        uow = own_queue.new_uow()
        async with uow:
            second = await uow.schedule("test.append", {}, dedup_key="rollup:x:2024")
            await uow.commit()
        assert second.id != first.id
        assert second.status == JobStatus.PENDING
        # The failed one's work is the pending one's now: retrying it is refused.
        with pytest.raises(Conflict) as refused:
            await jobs.retry(own_queue.new_uow(), SYSTEM, first.id)
        assert refused.value.code == "job_already_pending"

    async def test_a_lost_attempt_gives_way_to_a_pending_job_with_its_key(
        self, own_queue: Resources
    ) -> None:
        uow = own_queue.new_uow()
        async with uow:
            first = await uow.schedule("test.append", {}, dedup_key="rollup:y:2024")
            await uow.commit()
        await start_and_die(own_queue, first.id)
        # A change while it ran schedules a second job with the key.
        uow = own_queue.new_uow()
        async with uow:
            second = await uow.schedule("test.append", {}, dedup_key="rollup:y:2024")
            await uow.commit()
        assert second.id != first.id

        await sweep(own_queue)
        superseded = await stored(own_queue, first.id)
        assert superseded.status == JobStatus.CANCELLED
        assert superseded.error is not None
        assert str(second.id) in superseded.error
        await run_worker_until_idle(own_queue)
        assert (await stored(own_queue, second.id)).status == JobStatus.SUCCEEDED

    async def test_failed_attempt_is_retried_and_recorded(self, own_queue: Resources) -> None:
        job = await schedule(own_queue, "test.flaky", {"failures": 1})
        await run_worker_until_idle(own_queue)
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.attempts == 2
        assert done.error is None
        assert await effect_count(own_queue.engine, job.id) == 1

    async def test_job_failing_every_attempt_ends_failed_with_its_error(
        self, own_queue: Resources
    ) -> None:
        job = await schedule(own_queue, "test.flaky", {"failures": 99}, job_max_attempts=2)
        await run_worker_until_idle(own_queue)
        done = await stored(own_queue, job.id)
        assert done.status == JobStatus.FAILED
        assert done.attempts == 2
        assert done.error is not None
        assert "transient failure on attempt 2" in done.error
        assert await effect_count(own_queue.engine, job.id) == 0
        # A failed job is final: the sweep leaves it alone.
        assert await sweep(own_queue) == 0

    async def test_jobs_with_one_dedup_key_collapse_into_one(self, own_queue: Resources) -> None:
        uow = own_queue.new_uow()
        async with uow:
            first = await uow.schedule("test.append", {}, dedup_key="rollup:2024")
            second = await uow.schedule(
                "test.append", {}, dedup_key="rollup:2024", delay=timedelta(seconds=1)
            )
            await uow.commit()
        assert first.id == second.id
        assert second.not_before is not None

    async def test_an_overdue_debounced_job_is_swept_and_runs(
        self, own_queue: Resources, redis: ArqRedis
    ) -> None:
        uow = own_queue.new_uow()
        async with uow:
            # Its start time has passed: Redis lost it while it waited for its turn.
            job = await uow.schedule(
                "test.append", {}, dedup_key="late", delay=timedelta(seconds=-60)
            )
            await uow.commit()
        await forget(redis, own_queue, job.id)
        assert await sweep(own_queue) == 1
        await run_worker_until_idle(own_queue)
        assert await effect_count(own_queue.engine, job.id) == 1


@pytest.mark.usefixtures("effects")
class TestPrune:
    async def test_prune_deletes_only_old_finished_jobs(self, own_queue: Resources) -> None:
        old = await schedule(own_queue, "test.append", {})
        fresh = await schedule(own_queue, "test.append", {})
        pending = await schedule(own_queue, "test.append", {})
        async with own_queue.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE job SET status = 'succeeded', finished_at = now() - "
                    "CASE WHEN id = :old THEN interval '40 days' ELSE interval '1 day' END "
                    "WHERE id IN (:old, :fresh)"
                ),
                {"old": old.id, "fresh": fresh.id},
            )
        prune = await schedule(own_queue, "jobs.prune", {"older_than_days": 30})
        await run_worker_until_idle(own_queue)

        done = await stored(own_queue, prune.id)
        assert done.status == JobStatus.SUCCEEDED
        assert done.result is not None
        assert done.result["deleted"] == 1
        remaining = {job.id for job in await jobs.list_jobs(own_queue.new_uow(), SYSTEM)}
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
