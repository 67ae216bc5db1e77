"""The job table: the outbox and the record of every job's life."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id
from nscl_domain.jobs import JobStatus

_STATUSES = ", ".join(f"'{s.value}'" for s in JobStatus)


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # One pending job per (name, dedup_key): a burst of changes schedules one job.
        Index(
            "uq_job_pending_dedup",
            "name",
            "dedup_key",
            unique=True,
            postgresql_where=text("status = 'pending' AND dedup_key IS NOT NULL"),
        ),
        # The sweep reads jobs that are not done, oldest first.
        Index(
            "ix_job_unfinished",
            "created_at",
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
        Index("ix_job_name_status", "name", "status"),
        # A schedule fires once per fire time, however many workers tick at that moment.
        Index(
            "uq_job_schedule_fire",
            "schedule_id",
            "fire_at",
            unique=True,
            postgresql_where=text("schedule_id IS NOT NULL"),
        ),
    )

    # Server defaults come back in the INSERT's RETURNING: async code cannot lazy-load them.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    dedup_key: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), server_default=JobStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(server_default=text("5"))
    requested_by: Mapped[str | None] = mapped_column(String(200))
    not_before: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # A running attempt holds the job until then; it renews the lease while it runs.
    lease_expires_at: Mapped[datetime | None]
    # Hand-overs to the queue so far: each one gets a queue id of its own.
    handovers: Mapped[int] = mapped_column(server_default=text("0"))
    # Asked by an operator; the running attempt stops at its next progress report.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The schedule that fired the job and the fire time (an operator's run-now: the time
    # asked). No foreign key: deleting a schedule must neither wait for a running job's
    # row lock nor rewrite its history.
    schedule_id: Mapped[uuid.UUID | None]
    fire_at: Mapped[datetime | None]

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status)


class JobProgress(Base):
    """How far a running job has come, written by the job outside its own transaction.

    A table of its own, without a foreign key: the running job holds its row of ``job``
    locked, and a write to that row (or a key check against it) would wait for the job.
    """

    __tablename__ = "job_progress"

    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class JobSchedule(Base):
    """A job to run at the times a cron expression names, in the programme's time zone."""

    __tablename__ = "job_schedule"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    job_name: Mapped[str] = mapped_column(String(100))
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    cron: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    description: Mapped[str] = mapped_column(Text, server_default="")
    # Fire times up to here have been dealt with (fired, or skipped while paused or missed
    # beyond the catch-up window); the scheduler looks only after it.
    checked_through: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
