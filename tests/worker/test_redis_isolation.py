"""A test run shares the machine's Redis: it works on keys of its own and leaves others'."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from nscl_api.resources import Resources
from nscl_domain.jobs.queue import ArqJobQueue
from nscl_worker.settings import build_worker, cron_jobs
from tests.conftest import REDIS_PREFIX


@pytest.fixture
async def another_deployment(redis: ArqRedis) -> AsyncIterator[tuple[str, str]]:
    """Another nscl on the same Redis database: its own queue with a job waiting, a key."""
    queue = f"someone-else:{uuid.uuid4().hex[:8]}:jobs"
    note = f"someone-else:{uuid.uuid4().hex[:8]}:note"
    await redis.set(note, "kept", ex=600)
    await ArqJobQueue(redis, queue).enqueue(uuid.uuid4())
    yield queue, note
    await redis.delete(queue, note)


async def test_a_worker_and_its_clean_up_leave_another_deployments_keys(
    committed_resources: Resources, redis: ArqRedis, another_deployment: tuple[str, str]
) -> None:
    queue, note = another_deployment
    settings = committed_resources.settings
    assert settings.queue_name.startswith(REDIS_PREFIX)
    assert settings.auth_redis_prefix.startswith(REDIS_PREFIX)
    # arq names a cron run after the function: ours carry the queue, so two deployments'
    # sweeps never take each other's turn.
    assert all(job.name.startswith(settings.queue_name) for job in cron_jobs(settings))

    worker = build_worker(
        settings,
        database_url=committed_resources.database_url,
        redis=redis,
        burst=True,
        with_cron=False,
    )
    await worker.main()
    await redis.delete(settings.queue_name)

    assert await redis.get(note) == b"kept"
    assert await redis.zcard(queue) == 1, "the other deployment's job was taken or dropped"
