"""A webhook survives its worker killed mid-request and Redis forgetting everything: the
delivery is the outbox's, so a new worker sends the event again under the same webhook-id."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import pytest
from bench.private_services import WorkerProcess
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

import nscl_domain.composition  # noqa: F401 - installs the event hook in this process
from nscl_domain.audit.repository import AuditRepository
from nscl_domain.db import create_sessionmaker
from nscl_domain.identity import SYSTEM
from nscl_domain.identity import service as identity
from nscl_domain.uow import UnitOfWork
from nscl_worker.queue import ArqJobQueue
from tests.faults.conftest import QUEUE, Stack, arq_redis
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.faults

WEBHOOKS = {
    "webhook_allowed_networks": json.dumps(["127.0.0.0/8"]),
    "webhook_retry_base_seconds": 0.5,
}


async def test_an_event_in_flight_when_its_worker_dies_and_redis_is_flushed_is_delivered(
    stack: Stack, engine: AsyncEngine, start_worker: Callable[..., WorkerProcess]
) -> None:
    receiver = Receiver(stall_first=20).start()
    try:
        worker = start_worker(**WEBHOOKS)
        sessionmaker = create_sessionmaker(engine)
        operator = f"faults-operator-{uuid.uuid4().hex[:6]}"
        await identity.create_client(
            UnitOfWork(sessionmaker), SYSTEM, client_id=operator, name=operator,
            unit="bk-dost", roles=["operator"],
        )  # fmt: skip
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO webhook_subscription (id, owner_client_id, url, event_types, "
                    "secret, created_by) VALUES (gen_random_uuid(), :owner, :url, "
                    "ARRAY['job.failed'], :secret, :owner)"
                ),
                {"owner": operator, "url": receiver.url, "secret": secret},
            )
        # A change that is an event, committed as a use case commits (and rung on Redis).
        redis = await arq_redis(stack)
        try:
            uow = UnitOfWork(sessionmaker, ArqJobQueue(redis, QUEUE))
            async with uow:
                uow.get(AuditRepository).record(
                    SYSTEM, "job.failed", "job", uuid.uuid4(), after={"name": "jobs.prune"}
                )
                await uow.commit()
        finally:
            await redis.aclose()

        for _ in range(300):
            if receiver.tries:
                break
            await asyncio.sleep(0.1)
        [event_id] = list(receiver.tries)
        # The endpoint has the request; its sender dies before the answer, Redis forgets.
        worker.kill()
        assert stack.redis.cli("flushall") == "OK"
        start_worker(**WEBHOOKS)

        delivered = await receiver.wait_for(
            lambda got: any(r.headers["webhook-id"] == event_id for r in got), within=45
        )
        again = next(r for r in delivered if r.headers["webhook-id"] == event_id)
        Webhook(secret).verify(again.body, again.headers)
        assert receiver.tries[event_id] >= 2  # sent again, under the same webhook-id
        # The receiver answered before the worker recorded it: the row settles just after.
        for _ in range(100):
            async with engine.connect() as conn:
                status = await conn.scalar(
                    text("SELECT status FROM webhook_delivery WHERE event_id = CAST(:e AS uuid)"),
                    {"e": event_id},
                )
            if status != "pending":
                break
            await asyncio.sleep(0.1)
        assert status == "succeeded"
    finally:
        receiver.stop()
