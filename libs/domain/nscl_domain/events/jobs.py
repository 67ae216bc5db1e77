"""The delivery job of a subscription: drain what is due, then wake again when the next
retry is due (through the outbox, so a lost worker or a flushed queue loses nothing)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from nscl_domain.events.delivery import DeliveryConfig, drain
from nscl_domain.events.hook import DELIVER_JOB, delivery_job_statement
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobContext, JobKind
from nscl_domain.repositories import SessionRepository
from nscl_domain.uow import OUTBOX_HANDOVERS


class DeliverArgs(BaseModel):
    """Arguments of ``webhooks.deliver``."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: uuid.UUID


class DeliveryJobs(SessionRepository):
    """The delivery job's own follow-up, written in the job's transaction."""

    async def wake_at(self, subscription_id: uuid.UUID, when: datetime | None) -> Job:
        """The subscription's next delivery job, due ``when`` (None: now); a pending one
        keeps the earlier of the two times."""
        stmt = delivery_job_statement(subscription_id, when)
        job = (
            await self.session.scalars(stmt, execution_options={"populate_existing": True})
        ).one()
        self.session.info.setdefault(OUTBOX_HANDOVERS, []).append(job)
        return job


def delivery_jobs(config: DeliveryConfig) -> tuple[JobKind, ...]:
    """The webhook jobs, sending as ``config`` says."""

    async def deliver(ctx: JobContext, args: DeliverArgs) -> dict[str, Any]:
        assert ctx.sessionmaker_ is not None
        result = await drain(ctx.sessionmaker_, config, args.subscription_id)
        if result.more_due:
            await ctx.get(DeliveryJobs).wake_at(args.subscription_id, None)
        elif result.next_attempt_at is not None:
            await ctx.get(DeliveryJobs).wake_at(args.subscription_id, result.next_attempt_at)
        return {
            "sent": result.sent,
            "failed_attempts": result.failed_attempts,
            "next_attempt_at": result.next_attempt_at.isoformat()
            if result.next_attempt_at
            else None,
        }

    return (
        JobKind(
            name=DELIVER_JOB,
            args_model=DeliverArgs,
            handler=deliver,
            description="Send a webhook subscription's due events.",
        ),
    )
