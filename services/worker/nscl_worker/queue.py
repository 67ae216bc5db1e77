"""The job queue on arq: job ids derived from the outbox row, so duplicates are dropped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from arq.connections import ArqRedis

RUN_JOB = "run_job"


def arq_job_id(job_id: uuid.UUID) -> str:
    return f"job:{job_id}"


class ArqJobQueue:
    """Hands outbox job ids to arq. arq refuses a job id it still holds (queued or its result)."""

    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def enqueue(self, job_id: uuid.UUID, *, not_before: datetime | None = None) -> bool:
        # arq turns a start time already past into a negative expiry that Redis refuses.
        defer_until = not_before if not_before and not_before > datetime.now(UTC) else None
        queued = await self.redis.enqueue_job(
            RUN_JOB,
            str(job_id),
            _job_id=arq_job_id(job_id),
            _queue_name=self.queue_name,
            _defer_until=defer_until,
        )
        return queued is not None
