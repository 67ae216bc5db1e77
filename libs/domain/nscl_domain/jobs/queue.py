"""The hand-over to the queue, as the API and the worker both speak it.

The queue is arq on Redis, but the domain imports no arq: the client is named by the one
method the hand-over calls, so the API and the worker agree on the job function's name
and on the id of each hand-over here, without importing each other.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

RUN_JOB = "run_job"


class Enqueuer(Protocol):
    """The part of an arq Redis client the hand-over uses."""

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        **kwargs: Any,
    ) -> Any: ...


def arq_job_id(job_id: uuid.UUID, handover: int = 0) -> str:
    """The arq id of one hand-over: arq's memory of an earlier one never refuses a later."""
    return f"job:{job_id}:{handover}"


class ArqJobQueue:
    """Hands outbox job ids to arq; a repeated hand-over (same number) is dropped by arq."""

    def __init__(self, redis: Enqueuer, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def enqueue(
        self, job_id: uuid.UUID, *, handover: int = 0, not_before: datetime | None = None
    ) -> bool:
        """Queue hand-over ``handover`` of the job; False when arq already has that one."""
        # arq turns a start time already past into a negative expiry that Redis refuses.
        defer_until = not_before if not_before and not_before > datetime.now(UTC) else None
        queued = await self.redis.enqueue_job(
            RUN_JOB,
            str(job_id),
            _job_id=arq_job_id(job_id, handover),
            _queue_name=self.queue_name,
            _defer_until=defer_until,
        )
        return queued is not None
