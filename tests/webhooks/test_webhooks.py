"""Webhooks end to end: a real receiver on loopback, the real arq worker and Redis, the API.

Accepting a report reaches the receiver as report.accepted, then rollup.published, signed
so the Standard Webhooks verifier accepts them; an endpoint answering 500 twice gets each
event on the third attempt, once in effect, one object's events in order; a district's
subscriber never hears of another district's reports; internal targets are refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from standardwebhooks import Webhook

from nscl_api.auth.tokens import KeyRing
from nscl_api.resources import Resources
from nscl_domain.composition.registry import registry_for
from nscl_domain.errors import Unavailable
from nscl_domain.identity import SYSTEM, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.sealing import KeySealer
from nscl_domain.identity.service import Grant
from nscl_worker.deps import WorkerDeps
from nscl_worker.settings import build_worker
from tests.api.test_problems import assert_problem
from tests.conftest import mint_token
from tests.e2e.test_reporting_year import content_for
from tests.webhooks.receiver import Receiver

BK = "/v1/programmes/bac-kan-nscl"
YEAR = 2024
DISTRICT_A, DISTRICT_B = "bk-cho-don", "bk-na-ri"
ACCEPTED, PUBLISHED = "vn.gov.nscl.report.accepted", "vn.gov.nscl.rollup.published"


def bearer(keys: KeyRing, client_id: str, unit: str, role: Role) -> dict[str, str]:
    roles = frozenset({role})
    grant = Grant(client_id, unit, roles, permissions_of(roles))
    issued = keys.issue(grant, now=datetime.now(UTC), ttl_seconds=900)
    return {"Authorization": f"Bearer {issued.access_token}"}


@dataclasses.dataclass
class World:
    http: httpx.AsyncClient
    resources: Resources
    keys: KeyRing
    tag: str
    made: set[str] = dataclasses.field(default_factory=set)

    async def client(self, unit: str, role: Role) -> dict[str, str]:
        client_id = f"wh-{self.tag}-{role.value}-{unit}"
        if client_id in self.made:
            return bearer(self.keys, client_id, unit, role)
        self.made.add(client_id)
        await identity.create_client(
            self.resources.new_uow(), SYSTEM, client_id=client_id, name=client_id,
            unit=unit, roles=[role.value],
        )  # fmt: skip
        return bearer(self.keys, client_id, unit, role)


@pytest.fixture
async def world(
    committed_resources: Resources, shared_app: FastAPI, keys: KeyRing, redis: ArqRedis
) -> AsyncIterator[World]:
    """The app and a running worker, on a queue of their own; loopback allowed, short
    retry delays."""
    settings = committed_resources.settings.model_copy(
        update={
            "queue_name": f"nscl:test:webhooks:{uuid.uuid4().hex[:8]}",
            "webhook_allowed_networks": ["127.0.0.0/8"],
            "webhook_retry_base_seconds": 0.3,
            "outbox_sweep_seconds": 1,
            "outbox_grace_seconds": 1,
            "public_base_url": "https://nscl.backan.gov.vn",
            # Secrets sealed at rest: what is signed must still verify.
            "signing_key_passphrase": SecretStr("webhook tests passphrase"),
        }
    )
    resources = dataclasses.replace(committed_resources, settings=settings)
    registry = registry_for(settings)
    worker = build_worker(
        settings,
        database_url=resources.database_url,
        redis=redis,
        registry=registry,
        handle_signals=False,
        deps=WorkerDeps(
            settings=settings,
            engine=resources.engine,
            sessionmaker=resources.sessionmaker,
            queue=resources.queue,
            registry=registry,
        ),
    )
    running = asyncio.create_task(worker.main())
    shared_app.state.resources = resources
    transport = httpx.ASGITransport(app=shared_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://nscl.test") as http:
        yield World(http, resources, keys, uuid.uuid4().hex[:6])
    # Not worker.close(): it would close the session's shared Redis client.
    running.cancel()
    in_flight = list(worker.tasks.values())
    for task in in_flight:
        task.cancel()
    await asyncio.gather(running, *in_flight, return_exceptions=True)
    await redis.delete(settings.queue_name)


@pytest.fixture
def receiver() -> Any:
    started = Receiver().start()
    yield started
    started.stop()


async def subscribe(
    world: World, headers: dict[str, str], url: str, types: list[str], **extra: Any
) -> httpx.Response:
    return await world.http.post(
        "/v1/webhooks", json={"url": url, "event_types": types, **extra}, headers=headers
    )


async def file_and_accept(world: World, reviewer: dict[str, str], unit: str) -> str:
    """A reporter of ``unit`` files its report and the reviewer accepts it; the report id."""
    reporter = await world.client(unit, Role.REPORTER)
    obligations = (await world.http.get(f"{BK}/obligations?year={YEAR}", headers=reviewer)).json()
    obligation = next(o["id"] for o in obligations["items"] if o["unit"] == unit)
    created = await world.http.post(
        "/v1/reports", json={"obligation_id": obligation}, headers=reporter
    )
    assert created.status_code == 201, created.text
    report = created.json()["id"]
    written = await world.http.put(
        f"/v1/reports/{report}/draft",
        json=content_for(unit),
        headers={**reporter, "If-Match": created.headers["etag"]},
    )
    submitted = await world.http.post(
        f"/v1/reports/{report}/submission",
        headers={**reporter, "If-Match": written.headers["etag"]},
    )
    assert submitted.status_code == 200, submitted.text
    accepted = await world.http.post(
        f"/v1/reports/{report}/acceptance",
        headers={**reviewer, "If-Match": submitted.headers["etag"]},
    )
    assert accepted.status_code == 200, accepted.text
    return str(report)


def of_type(received: list[Any], kind: str) -> list[Any]:
    return [r for r in received if r.event["type"] == f"vn.gov.nscl.{kind}"]


async def test_accepted_report_reaches_the_receiver_signed_then_its_rollup(
    world: World, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    reviewer = bearer(world.keys, "test-reviewer", "bk-doh", Role.REVIEWER)
    generated = await world.http.post(
        f"{BK}/obligations/generation", json={"year": YEAR, "regime": "bk-annual"}, headers=reviewer
    )
    assert generated.status_code in (200, 201), generated.text
    # District A's own system subscribes for itself.
    district_a = await world.client(DISTRICT_A, Role.REPORTER)
    made = await subscribe(
        world, district_a, receiver.url,
        ["report.submitted", "report.accepted", "rollup.published"],
    )  # fmt: skip
    assert made.status_code == 201, made.text
    subscription = made.json()
    assert subscription["secret"].startswith("whsec_")
    assert "secret" not in (await world.http.get(
        f"/v1/webhooks/{subscription['id']}", headers=district_a
    )).json()  # fmt: skip

    # The province's reviewer reads every unit's reports, and subscribes for one subtree.
    scoped = Receiver().start()
    scoped_made = await subscribe(world, reviewer, scoped.url, ["report.accepted"], unit=DISTRICT_A)
    assert scoped_made.status_code == 201, scoped_made.text
    assert scoped_made.json()["unit"] == DISTRICT_A
    report_a = await file_and_accept(world, reviewer, DISTRICT_A)
    report_b = await file_and_accept(world, reviewer, DISTRICT_B)

    def accepted_then_rollup(got: list[Any]) -> bool:
        kinds = [r.event["type"] for r in got]
        accepted_at = kinds.index(ACCEPTED) if ACCEPTED in kinds else len(kinds)
        return PUBLISHED in kinds[accepted_at:]

    received = await receiver.wait_for(accepted_then_rollup)
    verifier = Webhook(subscription["secret"])
    for message in received:
        verifier.verify(message.body, message.headers)  # raises on a bad signature
    kinds = [r.event["type"].removeprefix("vn.gov.nscl.") for r in received]
    # The rollup that counts A's report is published after its acceptance reached us.
    assert "rollup.published" in kinds[kinds.index("report.accepted") :]
    # One object's events in their order, though each needed three attempts.
    assert kinds.index("report.submitted") < kinds.index("report.accepted")

    accepted = of_type(received, "report.accepted")[0].event
    assert accepted["specversion"] == "1.0"
    assert accepted["source"] == "https://nscl.backan.gov.vn/v1"
    assert accepted["data"]["report_id"] == report_a
    assert accepted["data"]["unit"] == DISTRICT_A
    assert accepted["data"]["links"]["self"] == f"https://nscl.backan.gov.vn/v1/reports/{report_a}"
    assert "indicator_values" not in accepted["data"]
    rollup = of_type(received, "rollup.published")[0].event["data"]
    assert {"run_id", "fingerprint", "programme", "year"} <= set(rollup)

    # By now (the rollup came after both acceptances) the subtree's subscriber has had A's
    # acceptance and nothing of B's.
    scoped.stop()
    only_a = of_type(scoped.delivered(), "report.accepted")
    assert [r.event["data"]["report_id"] for r in only_a] == [report_a]
    assert not any(report_b.encode() in r.body for r in scoped.requests)

    # District B's report was accepted too: A's subscriber never hears of it.
    everything = [r.body for r in receiver.requests]
    assert [b for b in everything if report_b.encode() in b or DISTRICT_B.encode() in b] == []
    assert not any(report_b.encode() in body or DISTRICT_B.encode() in body for body in everything)

    # 500 twice, then 200: each event delivered on its third attempt, once in effect.
    delivered_ids = [r.headers["webhook-id"] for r in received]
    assert len(delivered_ids) == len(set(delivered_ids))
    for msg_id in delivered_ids:
        assert receiver.tries[msg_id] == 3
    # The receiver has answered; the worker records the answer a moment later.
    for _ in range(50):
        log = (
            await world.http.get(
                f"/v1/webhooks/{subscription['id']}/deliveries?limit=200", headers=district_a
            )
        ).json()["items"]
        accepted_log = sorted(
            (a for a in log if a["event_id"] == accepted["id"]), key=lambda a: a["attempt"]
        )
        if len(accepted_log) == 3:
            break
        await asyncio.sleep(0.1)
    assert [(a["attempt"], a["status_code"], a["succeeded"]) for a in accepted_log] == [
        (1, 500, False), (2, 500, False), (3, 200, True),
    ]  # fmt: skip
    assert accepted_log[0]["response_excerpt"] == "not now"
    assert all(a["latency_ms"] >= 0 for a in accepted_log)

    # Replaying the event sends it again under the same webhook-id.
    replayed = await world.http.post(
        f"/v1/webhooks/{subscription['id']}/replay",
        json={"event_id": accepted["id"]},
        headers=district_a,
    )
    assert replayed.status_code == 202, replayed.text
    assert replayed.json() == {"requeued": 1}
    await receiver.wait_for(
        lambda got: sum(r.headers["webhook-id"] == accepted["id"] for r in got) == 2
    )


async def subscribe_and_rotate(world: World, receiver: Receiver) -> tuple[str, str, str]:
    """An operator's subscription whose secret was rotated with a 2-hour overlap: its id, the
    old secret and the new one."""
    operator = bearer(world.keys, "test-operator", "bk-doh", Role.OPERATOR)
    made = await subscribe(world, operator, receiver.url, ["job.failed"])
    assert made.status_code == 201, made.text
    rotated = await world.http.post(
        f"/v1/webhooks/{made.json()['id']}/secret-rotation",
        json={"overlap_hours": 2},
        headers=operator,
    )
    assert rotated.status_code == 200, rotated.text
    return made.json()["id"], made.json()["secret"], rotated.json()["secret"]


async def test_rotated_secret_signs_beside_the_old_one_during_the_overlap(
    world: World, receiver: Receiver
) -> None:
    _, old, new = await subscribe_and_rotate(world, receiver)
    assert new != old
    # A job that fails for good is an event operators hear of.
    async with world.resources.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO job (id, name, args, max_attempts) "
                "VALUES (gen_random_uuid(), 'no.such.job', '{}', 1)"
            )
        )

    def ours(got: list[Any]) -> list[Any]:
        return [r for r in of_type(got, "job.failed") if r.event["data"]["name"] == "no.such.job"]

    message = ours(await receiver.wait_for(ours))[0]
    assert len(message.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(message.body, message.headers)
    Webhook(new).verify(message.body, message.headers)


async def test_the_database_holds_the_secrets_sealed_not_the_secrets(
    world: World, receiver: Receiver
) -> None:
    sub_id, old, new = await subscribe_and_rotate(world, receiver)
    async with world.resources.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT secret, previous_secret FROM webhook_subscription WHERE id = :id"),
                {"id": sub_id},
            )
        ).one()
    sealer = KeySealer.from_settings(world.resources.settings)
    for column, plain in ((stored.secret, new), (stored.previous_secret, old)):
        assert plain.removeprefix("whsec_") not in column
        assert sealer.open_secret("the subscription", column) == plain
        with pytest.raises(Unavailable):
            KeySealer(passphrase="another passphrase").open_secret("the subscription", column)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.20.30.40/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
    ],
)
async def test_internal_targets_are_refused(
    client: httpx.AsyncClient, shared_app: FastAPI, url: str
) -> None:
    resources = shared_app.state.resources
    shared_app.state.resources = dataclasses.replace(
        resources,
        settings=resources.settings.model_copy(update={"webhook_allowed_networks": []}),
    )
    try:
        answer = await client.post("/v1/webhooks", json={"url": url, "event_types": ["job.failed"]})
    finally:
        shared_app.state.resources = resources
    assert_problem(answer, 422, "webhook_target_internal")
    assert answer.json()["errors"][0]["location"] == ["body", "url"]


async def test_a_redirecting_target_is_refused(
    client: httpx.AsyncClient, shared_app: FastAPI
) -> None:
    redirecting = Receiver(redirect_to="http://169.254.169.254/latest/meta-data/").start()
    resources = shared_app.state.resources
    shared_app.state.resources = dataclasses.replace(
        resources,
        settings=resources.settings.model_copy(
            update={"webhook_allowed_networks": ["127.0.0.0/8"]}
        ),
    )
    try:
        answer = await client.post(
            "/v1/webhooks", json={"url": redirecting.url, "event_types": ["job.failed"]}
        )
    finally:
        shared_app.state.resources = resources
        redirecting.stop()
    assert_problem(answer, 422, "webhook_target_redirects")
    assert redirecting.requests, "the target was asked"


async def test_https_is_required_in_production(
    client: httpx.AsyncClient, shared_app: FastAPI
) -> None:
    resources = shared_app.state.resources
    shared_app.state.resources = dataclasses.replace(
        resources, settings=resources.settings.model_copy(update={"environment": "production"})
    )
    try:
        answer = await client.post(
            "/v1/webhooks",
            json={"url": "http://example.org/hook", "event_types": ["job.failed"]},
        )
    finally:
        shared_app.state.resources = resources
    assert_problem(answer, 422, "webhook_target_refused")


async def test_operators_subscribe_any_client_and_clients_only_themselves(
    anonymous: httpx.AsyncClient, keys: KeyRing
) -> None:
    def as_(client_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(keys, client_id)}"}

    body = {"url": "http://127.0.0.1:9/events", "event_types": ["report.accepted"]}
    made = await anonymous.post(
        "/v1/webhooks", json={**body, "owner": "test-reporter"}, headers=as_("test-operator")
    )
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "test-reporter"
    mine = await anonymous.get("/v1/webhooks", headers=as_("test-reporter"))
    assert [s["id"] for s in mine.json()["items"]] == [made.json()["id"]]
    theirs = await anonymous.get(
        f"/v1/webhooks/{made.json()['id']}", headers=as_("test-reporter-other")
    )
    assert_problem(theirs, 404, "webhook_not_found")
    unknown = await anonymous.post(
        "/v1/webhooks", json={**body, "owner": "nobody-here"}, headers=as_("test-operator")
    )
    assert_problem(unknown, 422, "unknown_client")
    for_another = await anonymous.post(
        "/v1/webhooks", json={**body, "owner": "test-viewer"}, headers=as_("test-reporter")
    )
    assert_problem(for_another, 403, "insufficient_scope")
