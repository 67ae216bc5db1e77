"""Durable jobs: the contract between the API, the domain and the worker.

A job is a row of the ``job`` table (the outbox), written in the same transaction as the
change that needs it, and the row is the only truth about it. After the commit a relay
hands the row's id to the queue, which is only a doorbell: each hand-over has a queue id of
its own, so nothing the queue remembers can refuse a run the row asks for. A running
attempt holds a lease it renews while it runs; a periodic sweep hands over again the jobs
that are due but not started and those whose lease lapsed (their worker died), so losing
a worker or the queue's contents loses no job and delays it by seconds.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID


class JobName(StrEnum):
    """Every kind of job the worker knows how to run."""

    PRUNE_JOBS = "jobs.prune"
    REFRESH_ROLLUP = "rollups.refresh"
    REBUILD_ROLLUPS = "rollups.rebuild"
    PUSH_UPSTREAM = "rollups.push_upstream"
    BUILD_DOSSIERS = "budget.build_dossiers"
    BUILD_DOCUMENT = "documents.build"
    SEND_REMINDERS = "reminders.send"
    DELIVER_REMINDER = "reminders.deliver"


class JobStatus(StrEnum):
    """Life of a job: pending → running → succeeded | failed | cancelled; a failed or lost
    attempt with attempts left goes back to pending; pending → cancelled; an operator's
    retry takes failed or cancelled back to pending."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


class JobQueue(Protocol):
    """Where job ids are handed for execution (arq on Redis, in production)."""

    async def enqueue(
        self, job_id: UUID, *, handover: int = 0, not_before: datetime | None = None
    ) -> bool:
        """Queue hand-over number ``handover`` of the job; False when the queue holds it."""
        ...


class AttemptObserver(Protocol):
    """Told how each attempt ended (the worker counts them for its metrics)."""

    def attempt_ended(self, job_name: str, outcome: str, seconds: float) -> None:
        """``outcome``: succeeded, failed, retried, cancelled, lost or interrupted."""
        ...


class RetryLater(Exception):
    """A job attempt failed in a way worth retrying after ``delay_seconds``."""

    def __init__(self, delay_seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.delay_seconds = delay_seconds
        self.reason = reason


class PermanentJobError(Exception):
    """A job attempt failed in a way no retry can mend (its programme no longer exists, its
    arguments break a rule): the job fails at once, whatever attempts it had left."""

    def __init__(self, reason: str, *, code: str = "job_invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class JobCancelled(Exception):
    """An operator asked the running job to stop; raised at its next progress report."""


class AttemptLost(Exception):
    """The attempt lost its lease (another attempt took the job over); its work is void."""
