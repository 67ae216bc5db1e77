"""One delivery attempt's rules, and an endpoint failing for days being disabled."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from nscl_api.resources import Resources
from nscl_domain.audit.repository import AuditRepository
from nscl_domain.events.delivery import DeliveryConfig, Outcome, drain, new_http_client, post
from nscl_domain.identity import SYSTEM
from tests.webhooks.receiver import Receiver

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


async def send(config: DeliveryConfig, url: str) -> Outcome:
    async with new_http_client(config) as http:
        return await post(http, config, url, b"{}", {"webhook-id": "msg_1"})


async def test_the_address_is_checked_again_at_delivery(receiver: Receiver) -> None:
    # Allowed when subscribed, no longer allowed now: nothing is sent.
    outcome = await send(DeliveryConfig(allowed_networks=()), receiver.url)
    assert not outcome.ok
    assert outcome.error is not None
    assert "127.0.0.1" in outcome.error
    assert receiver.requests == []


async def test_a_redirect_is_an_answer_not_followed(receiver: Receiver) -> None:
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    outcome = await send(DeliveryConfig(allowed_networks=LOOPBACK), receiver.url)
    assert (outcome.ok, outcome.status_code) == (False, 302)
    assert outcome.error is not None
    assert "redirect" in outcome.error
    assert len(receiver.requests) == 1


async def test_a_long_answer_is_read_up_to_a_bound(receiver: Receiver) -> None:
    receiver.answer_bytes = 5_000_000
    config = DeliveryConfig(allowed_networks=LOOPBACK, max_response_bytes=64 * 1024)
    outcome = await send(config, receiver.url)
    assert outcome.ok
    assert outcome.excerpt is not None
    assert len(outcome.excerpt) == config.excerpt_chars


async def test_an_endpoint_failing_for_days_is_disabled_and_operators_hear_of_it(
    committed_resources: Resources, receiver: Receiver
) -> None:
    failing = Receiver(fail_first=1000).start()
    try:
        async with committed_resources.engine.begin() as conn:
            ids = {}
            for name, url, types in (
                ("failing", failing.url, ["job.failed"]),
                ("operators", receiver.url, ["webhook.disabled"]),
            ):
                ids[name] = await conn.scalar(
                    text(
                        "INSERT INTO webhook_subscription (id, owner_client_id, url, "
                        "event_types, secret, created_by) VALUES (gen_random_uuid(), "
                        "'test-operator', :url, :types, "
                        "'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'test') RETURNING id"
                    ),
                    {"url": url, "types": types},
                )
        uow = committed_resources.new_uow()
        async with uow:
            uow.get(AuditRepository).record(SYSTEM, "job.failed", "job", uuid.uuid4())
            await uow.commit()
        config = DeliveryConfig(
            allowed_networks=LOOPBACK,
            retry_base_seconds=0.05,
            disable_after_seconds=timedelta(milliseconds=100).total_seconds(),
        )
        sessionmaker = committed_resources.sessionmaker
        for _ in range(20):
            await drain(sessionmaker, config, ids["failing"])
            async with committed_resources.engine.connect() as conn:
                enabled = await conn.scalar(
                    text("SELECT enabled FROM webhook_subscription WHERE id = :id"),
                    {"id": ids["failing"]},
                )
            if not enabled:
                break
            await asyncio.sleep(0.1)
        assert enabled is False
        await drain(sessionmaker, config, ids["operators"])
    finally:
        failing.stop()
    [told] = receiver.delivered()
    assert told.event["type"] == "vn.gov.nscl.webhook.disabled"
    assert told.event["data"]["subscription_id"] == str(ids["failing"])


async def test_a_subscription_has_at_most_its_limit_in_flight(
    committed_resources: Resources,
) -> None:
    slow = Receiver(stall_each=0.3).start()
    try:
        async with committed_resources.engine.begin() as conn:
            sub_id = await conn.scalar(
                text(
                    "INSERT INTO webhook_subscription (id, owner_client_id, url, event_types, "
                    "secret, created_by, max_concurrency) VALUES (gen_random_uuid(), "
                    "'test-operator', :url, ARRAY['job.failed'], "
                    "'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'test', 2) RETURNING id"
                ),
                {"url": slow.url},
            )
        uow = committed_resources.new_uow()
        async with uow:
            for _ in range(8):  # eight objects: nothing orders them, only the limit holds
                uow.get(AuditRepository).record(SYSTEM, "job.failed", "job", uuid.uuid4())
            await uow.commit()
        result = await drain(
            committed_resources.sessionmaker, DeliveryConfig(allowed_networks=LOOPBACK), sub_id
        )
    finally:
        slow.stop()
    assert result.sent == 8
    assert slow.most_in_flight == 2
