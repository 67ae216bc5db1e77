"""Fault injection: real `nscl worker` processes on a private PostgreSQL and Redis.

The services are the tests' own (free ports, temporary folders), so the tests may kill,
stop and flush them. Workers get short leases and a fast sweep through their environment:
the mechanisms are the production ones, only the clock runs faster.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from bench import datagen
from bench.private_services import (
    PrivatePostgres,
    PrivateRedis,
    WorkerProcess,
    nscl,
    private_services,
    worker_env,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.requests import refresh_key
from nscl_domain.uow import UnitOfWork
from nscl_worker.queue import ArqJobQueue

# Faster than production (lease 10 s, heartbeat 2 s, sweep 5 s, grace 10 s), same logic.
FAST = {
    "job_lease_seconds": 3,
    "job_heartbeat_seconds": 0.5,
    "outbox_sweep_seconds": 1,
    "outbox_grace_seconds": 1,
}
QUEUE = "nscl:jobs"


@dataclass
class Stack:
    postgres: PrivatePostgres
    redis: PrivateRedis
    database_url: str
    dataset: datagen.Dataset
    logs: Path

    def env(self, **settings: Any) -> dict[str, str]:
        return worker_env(self.database_url, self.redis.url, **{**FAST, **settings})


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    if missing and os.environ.get("CI", "").lower() != "true":
        pytest.skip(f"fault tests need {', '.join(missing)} installed")
    with private_services() as (postgres, redis):
        url = postgres.create_database("nscl")
        env = worker_env(url, redis.url)
        nscl(env, "db", "upgrade")
        nscl(env, "seed")
        dataset = asyncio.run(_generate(url))
        yield Stack(postgres, redis, url, dataset, tmp_path_factory.mktemp("worker-logs"))


async def _generate(url: str) -> datagen.Dataset:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.begin() as conn:
            return await datagen.generate(conn, provinces=4, units_per_province=20, indicators=20)
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(stack: Stack) -> AsyncIterator[AsyncEngine]:
    # A connection per use: PostgreSQL restarts under some tests.
    engine = create_engine(stack.database_url, pooled=False)
    yield engine
    await engine.dispose()


@pytest.fixture
def start_worker(
    stack: Stack, request: pytest.FixtureRequest
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []
    log = stack.logs / f"{request.node.name}.log"

    def start(*args: str, **settings: Any) -> WorkerProcess:
        worker = WorkerProcess(stack.env(**settings), log).start(*args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and log.exists():
        print(log.read_text()[-20_000:])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]  # read by start_worker
    return report


async def arq_redis(stack: Stack) -> ArqRedis:
    return await create_pool(RedisSettings.from_dsn(stack.redis.url))


async def schedule(
    stack: Stack,
    engine: AsyncEngine,
    name: str,
    args: dict[str, Any],
    *,
    ring: bool = True,
    **schedule_kw: Any,
) -> uuid.UUID:
    """Record a job as the API does; ``ring=False``: Redis is down, only the sweep hands it."""
    redis = await arq_redis(stack) if ring else None
    try:
        queue = ArqJobQueue(redis, QUEUE) if redis is not None else None
        uow = UnitOfWork(create_sessionmaker(engine), queue)
        async with uow:
            job = await uow.schedule(name, args, requested_by="faults", **schedule_kw)
            await uow.commit()
        return job.id
    finally:
        if redis is not None:
            await redis.aclose()


async def job_row(engine: AsyncEngine, job_id: uuid.UUID) -> Job:
    async with create_sessionmaker(engine)() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def wait_for_job(
    engine: AsyncEngine,
    job_id: uuid.UUID,
    done: Callable[[Job], bool],
    *,
    deadline_seconds: float,
) -> tuple[Job, float]:
    """Poll the job row until ``done``; return it and the seconds it took (fail at the deadline)."""
    started = time.monotonic()
    while True:
        try:
            job = await job_row(engine, job_id)
            if done(job):
                return job, time.monotonic() - started
        except OSError:
            pass  # PostgreSQL is restarting
        elapsed = time.monotonic() - started
        if elapsed > deadline_seconds:
            raise AssertionError(
                f"job {job_id} not there within {deadline_seconds} s: {job.status}, "
                f"attempts {job.attempts}, error {job.error}"
            )
        await asyncio.sleep(0.2)


class HeldRefreshLock:
    """Hold one programme-year's refresh lock: a rebuild that needs it runs until released.

    It makes "kill the worker in the middle of the rebuild" a certainty, not a race with a
    rebuild that takes a second on this small data set.
    """

    def __init__(self, engine: AsyncEngine, stack: Stack) -> None:
        self.engine = engine
        self.key = refresh_key(stack.dataset.provincial_programme_ids[0], 2021)
        self._conn: Any = None

    async def __aenter__(self) -> HeldRefreshLock:
        self._conn = await self.engine.connect()
        await self._conn.execute(
            text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), {"k": self.key}
        )
        await self._conn.commit()
        return self

    async def release(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
