"""What each job name means: its argument schema and the domain function that runs it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ProgressReporter = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the transaction its effects belong to, the job and the time.

    ``report_progress`` writes to the job row outside that transaction, so the job resource
    shows how far a long job has come while it runs.
    """

    session: AsyncSession
    job_id: uuid.UUID
    attempt: int
    now: datetime
    report_progress: ProgressReporter | None = None
    # For work that may run on a second connection beside the job's own transaction.
    sessionmaker: async_sessionmaker[AsyncSession] | None = None


Handler = Callable[[JobContext, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class JobKind:
    """A kind of job. ``operator_may_schedule``: may be started over the API by operators."""

    name: str
    args_model: type[BaseModel]
    handler: Handler
    description: str
    operator_may_schedule: bool = False


JobRegistry = Mapping[str, JobKind]
