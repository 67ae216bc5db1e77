"""Jobs finish through killed workers, lost Redis contents and database outages.

Deadlines here are limits the product promises (a job whose worker died runs again within
seconds, not after its time limit), asserted as deadlines; the measured figures are the
job-recovery benchmark's.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from bench import datagen
from bench.private_services import WorkerProcess, free_port
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from nscl_domain.db import create_sessionmaker
from nscl_domain.identity import SYSTEM
from nscl_domain.jobs import JobName, JobStatus
from nscl_domain.jobs import service as jobs
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.requests import refresh_key, refresh_later
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.rollups.runs import plan_runs
from nscl_domain.uow import UnitOfWork
from nscl_worker.queue import ArqJobQueue
from tests.faults.conftest import (
    QUEUE,
    HeldRefreshLock,
    Stack,
    arq_redis,
    schedule,
    wait_for_job,
)

pytestmark = pytest.mark.faults

RECOVERY_DEADLINE_SECONDS = 30
# The outages the product promises to ride out (Redis down a minute, PostgreSQL 15 s).
REDIS_OUTAGE_SECONDS = 60
DATABASE_OUTAGE_SECONDS = 15
REBUILD = JobName.REBUILD_ROLLUPS.value


def running(attempt: int) -> Callable[[Job], bool]:
    return lambda job: job.status == JobStatus.RUNNING and job.attempts == attempt


def finished(job: Job) -> bool:
    return job.job_status.is_final


def health(port: int, path: str = "/health") -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


async def wait_until_ready(port: int) -> None:
    for _ in range(200):
        try:
            if (await asyncio.to_thread(health, port, "/ready"))[0] == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the worker never said it was ready")


async def test_a_job_whose_worker_was_killed_succeeds_soon_after_a_restart(
    stack: Stack, engine: AsyncEngine, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker()
    async with HeldRefreshLock(engine, stack) as lock:
        job_id = await schedule(stack, engine, REBUILD, {"force": True})
        await wait_for_job(engine, job_id, running(1), deadline_seconds=20)
        worker.kill()
        await lock.release()

    start_worker()
    done, seconds = await wait_for_job(
        engine, job_id, finished, deadline_seconds=RECOVERY_DEADLINE_SECONDS
    )
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == 2
    assert seconds < RECOVERY_DEADLINE_SECONDS


async def test_a_job_killed_every_attempt_ends_failed_and_an_operator_retry_runs_it(
    stack: Stack, engine: AsyncEngine, start_worker: Callable[..., WorkerProcess]
) -> None:
    worker = start_worker()
    async with HeldRefreshLock(engine, stack):
        job_id = await schedule(stack, engine, REBUILD, {"force": True})
        for attempt in range(1, 7):
            job, _ = await wait_for_job(
                engine,
                job_id,
                lambda job, n=attempt: finished(job) or running(n)(job),  # type: ignore[misc]
                deadline_seconds=RECOVERY_DEADLINE_SECONDS,
            )
            if finished(job):
                break
            worker.kill()
            worker = start_worker()
        failed, _ = await wait_for_job(
            engine, job_id, finished, deadline_seconds=RECOVERY_DEADLINE_SECONDS
        )
    assert failed.status == JobStatus.FAILED
    assert failed.attempts == failed.max_attempts
    assert failed.error is not None
    assert "was lost" in failed.error

    redis = await arq_redis(stack)
    try:
        uow = UnitOfWork(create_sessionmaker(engine), ArqJobQueue(redis, QUEUE))
        await jobs.retry(uow, SYSTEM, job_id)
    finally:
        await redis.aclose()
    done, _ = await wait_for_job(
        engine, job_id, finished, deadline_seconds=RECOVERY_DEADLINE_SECONDS
    )
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert done.attempts == failed.attempts + 1


async def test_the_worker_lives_through_a_redis_outage_and_runs_what_waited(
    stack: Stack, engine: AsyncEngine, start_worker: Callable[..., WorkerProcess]
) -> None:
    port = free_port()
    worker = start_worker("--health-port", str(port))
    await wait_until_ready(port)
    before = await schedule(stack, engine, "jobs.prune", {})
    await wait_for_job(engine, before, finished, deadline_seconds=RECOVERY_DEADLINE_SECONDS)

    stack.redis.stop()
    try:
        # Scheduled while Redis is away: the hand-over fails, the row remains.
        during = await schedule(stack, engine, "jobs.prune", {}, ring=False)
        await asyncio.sleep(REDIS_OUTAGE_SECONDS)
        assert worker.alive
        status, answer = await asyncio.to_thread(health, port, "/ready")
        assert status == 503
        assert answer["redis"] is False
        assert answer["database"] is True
        assert "redis" in answer["waiting_for"]
    finally:
        stack.redis.start()

    done, _ = await wait_for_job(
        engine, during, finished, deadline_seconds=RECOVERY_DEADLINE_SECONDS
    )
    assert done.status == JobStatus.SUCCEEDED
    assert worker.alive
    status, answer = await asyncio.to_thread(health, port, "/ready")
    assert (status, answer["waiting_for"]) == (200, [])


async def test_jobs_run_after_redis_forgets_everything(
    stack: Stack, engine: AsyncEngine, start_worker: Callable[..., WorkerProcess]
) -> None:
    start_worker()
    async with HeldRefreshLock(engine, stack):
        rebuild = await schedule(stack, engine, REBUILD, {"force": True})
        await wait_for_job(engine, rebuild, running(1), deadline_seconds=20)
        later = await schedule(
            stack, engine, "jobs.prune", {}, dedup_key="faults:later", delay=timedelta(seconds=2)
        )
        assert stack.redis.cli("flushall") == "OK"

    for job_id in (rebuild, later):
        done, _ = await wait_for_job(
            engine, job_id, finished, deadline_seconds=RECOVERY_DEADLINE_SECONDS
        )
        assert done.status == JobStatus.SUCCEEDED, done.error


async def test_a_refresh_due_during_a_database_outage_publishes_every_accepted_report(
    stack: Stack, engine: AsyncEngine, start_worker: Callable[..., WorkerProcess]
) -> None:
    port = free_port()
    worker = start_worker("--health-port", str(port))
    await wait_until_ready(port)
    programme_id, year = stack.dataset.provincial_programme_ids[1], 2024

    async def accept(unit: int) -> None:
        async with engine.begin() as conn:
            await datagen.accept_correction(conn, stack.dataset, province=1, unit=unit, year=year)
        redis = await arq_redis(stack)
        try:
            uow = UnitOfWork(create_sessionmaker(engine), ArqJobQueue(redis, QUEUE))
            async with uow:
                await refresh_later(uow, programme_id, year, requested_by="faults")
                await uow.commit()
        finally:
            await redis.aclose()

    await accept(unit=0)
    stack.postgres.stop()
    try:
        # The refresh falls due (5 s debounce) while PostgreSQL is down.
        await asyncio.sleep(DATABASE_OUTAGE_SECONDS)
        assert worker.alive
        status, answer = await asyncio.to_thread(health, port, "/ready")
        assert status == 503
        assert answer["database"] is False
    finally:
        stack.postgres.start()
    await accept(unit=1)

    key = refresh_key(programme_id, year)

    async def refreshes() -> list[Job]:
        async with create_sessionmaker(engine)() as session:
            return list(
                (
                    await session.scalars(
                        select(Job).where(Job.dedup_key == key).order_by(Job.created_at)
                    )
                ).all()
            )

    for job in await refreshes():
        await wait_for_job(engine, job.id, finished, deadline_seconds=RECOVERY_DEADLINE_SECONDS)
    assert any(job.status == JobStatus.SUCCEEDED for job in await refreshes())
    assert all(job.status != JobStatus.FAILED for job in await refreshes())
    async with create_sessionmaker(engine)() as session:
        rollup_repo = RollupRepository(session)
        inputs = await rollup_repo.provincial_inputs([(programme_id, year)], with_sources=True)
        published = await rollup_repo.published([(programme_id, year)])
        # The published run is the one the accepted reports make now: nothing left to do.
        assert plan_runs(list(inputs.values()), published) == []
    assert worker.alive
