"""Use cases of subscriptions: subscribe, read, rotate the secret, enable, delete, read the
delivery log, replay. Operators (``webhooks.manage``) manage every subscription; any client
manages its own, and receives only what it could read over the API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.events import SUBSCRIBABLE, DeliveryStatus, EventType, signing, targets
from nscl_domain.events.delivery import DeliveryConfig, new_http_client, post
from nscl_domain.events.hook import wake_delivery_job
from nscl_domain.events.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from nscl_domain.identity import Caller, Permission
from nscl_domain.identity.models import ApiClient
from nscl_domain.identity.sealing import KeySealer
from nscl_domain.identity.units import ClientUnits
from nscl_domain.repositories import SessionRepository
from nscl_domain.uow import OUTBOX_HANDOVERS, UnitOfWork

MAX_OVERLAP_HOURS = 168


class WebhookRepository(SessionRepository):
    async def get(
        self, sub_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookSubscription | None:
        stmt = select(WebhookSubscription).where(
            WebhookSubscription.id == sub_id, WebhookSubscription.deleted_at.is_(None)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (
            await self.session.scalars(stmt, execution_options={"populate_existing": True})
        ).one_or_none()

    async def list(
        self, owner: str | None, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[WebhookSubscription]:
        stmt = (
            select(WebhookSubscription)
            .where(WebhookSubscription.deleted_at.is_(None))
            .order_by(WebhookSubscription.id.desc())
            .limit(limit + 1)
        )
        if owner is not None:
            stmt = stmt.where(WebhookSubscription.owner_client_id == owner)
        if before_id is not None:
            stmt = stmt.where(WebhookSubscription.id < before_id)
        return (await self.session.scalars(stmt)).all()

    async def attempts(
        self, sub_id: uuid.UUID, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[WebhookAttempt, str]]:
        stmt = (
            select(WebhookAttempt, WebhookEvent.type)
            .join(WebhookEvent, WebhookEvent.id == WebhookAttempt.event_id)
            .where(WebhookAttempt.subscription_id == sub_id)
            .order_by(WebhookAttempt.id.desc())
            .limit(limit + 1)
        )
        if before_id is not None:
            stmt = stmt.where(WebhookAttempt.id < before_id)
        return [(a, t) for a, t in (await self.session.execute(stmt)).all()]

    async def events_between(
        self, since: datetime, until: datetime, limit: int
    ) -> Sequence[WebhookEvent]:
        return (
            await self.session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.occurred_at >= since, WebhookEvent.occurred_at < until)
                .order_by(WebhookEvent.occurred_at, WebhookEvent.id)
                .limit(limit)
            )
        ).all()

    async def client_exists(self, client_id: str) -> bool:
        found = await self.session.scalar(
            select(ApiClient.id).where(ApiClient.client_id == client_id, ApiClient.enabled)
        )
        return found is not None

    async def event(self, event_id: uuid.UUID) -> WebhookEvent | None:
        return await self.session.get(WebhookEvent, event_id)

    async def requeue(self, sub_id: uuid.UUID, event_ids: Sequence[uuid.UUID]) -> int:
        """Deliver these events again (a fresh window), in their order per object."""
        if not event_ids:
            return 0
        events = (
            await self.session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(event_ids)))
        ).all()
        rows = [
            {
                "subscription_id": sub_id,
                "event_id": e.id,
                "object_key": f"{e.object_type}:{e.object_id}"[:160],
            }
            for e in events
        ]
        stmt = insert(WebhookDelivery).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[WebhookDelivery.subscription_id, WebhookDelivery.event_id],
            set_={
                "status": DeliveryStatus.PENDING.value,
                "next_attempt_at": func.now(),
                "give_up_at": None,
                "finished_at": None,
            },
        )
        await self.session.execute(stmt)
        return len(rows)

    async def pending_count(self, sub_id: uuid.UUID) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).where(
                    WebhookDelivery.subscription_id == sub_id,
                    WebhookDelivery.status == DeliveryStatus.PENDING.value,
                )
            )
            or 0
        )


@dataclass(frozen=True)
class Created:
    subscription: WebhookSubscription
    secret: str


def _types(event_types: Sequence[str]) -> list[str]:
    known = {t.value for t in SUBSCRIBABLE}
    wrong = [i for i, t in enumerate(event_types) if t not in known]
    if wrong or not event_types:
        raise Invalid(
            "Unknown event types.",
            code="invalid_event_types",
            fields=[
                FieldProblem(
                    ("body", "event_types", *([i] if wrong else [])),
                    "Must be one of: " + ", ".join(sorted(known)) + ".",
                )
                for i in (wrong or [0])
            ],
        )
    return sorted(set(event_types))


async def check_target(config: DeliveryConfig, url: str) -> None:
    """Refuse a target that resolves to an internal address, or that redirects: a signed
    ping is sent, and a 3xx answer refuses the subscription (redirects are never followed,
    so such an endpoint would never receive anything)."""
    try:
        await config.check(url)
    except targets.TargetRefused as exc:
        raise Invalid(
            exc.reason, code=exc.code, fields=[FieldProblem(("body", "url"), exc.reason)]
        ) from exc


async def _ping(config: DeliveryConfig, url: str, secret: str) -> None:
    msg_id = f"ping_{uuid.uuid4()}"
    body = (
        '{"specversion":"1.0","id":"' + msg_id + '","source":"' + config.base_url + '/v1",'
        '"type":"' + EventType.WEBHOOK_PING.cloudevents_type + '","datacontenttype":'
        '"application/json","data":{}}'
    ).encode()
    async with new_http_client(config) as http:
        outcome = await post(
            http, config, url, body, signing.headers([secret], msg_id, int(time.time()), body)
        )
    if outcome.status_code is not None and 300 <= outcome.status_code < 400:
        reason = "The target redirects; webhooks follow no redirects."
        raise Invalid(
            reason, code="webhook_target_redirects", fields=[FieldProblem(("body", "url"), reason)]
        )


def _may_manage(caller: Caller, sub: WebhookSubscription) -> bool:
    return caller.can(Permission.WEBHOOKS_MANAGE) or sub.owner_client_id == caller.client_id


async def _own(
    uow: UnitOfWork, caller: Caller, sub_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription:
    sub = await uow.get(WebhookRepository).get(sub_id, for_update=for_update)
    if sub is None or not _may_manage(caller, sub):
        raise NotFound(f"Webhook subscription {sub_id} does not exist.", code="webhook_not_found")
    return sub


async def create(
    uow: UnitOfWork,
    caller: Caller,
    config: DeliveryConfig,
    *,
    url: str,
    event_types: Sequence[str],
    unit: str | None,
    description: str | None,
    max_concurrency: int,
    owner: str | None = None,
) -> Created:
    """Subscribe ``owner`` (operators may name another client; by default the caller)."""
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    owner_id = caller.client_id
    if owner is not None and owner != caller.client_id:
        caller.require(Permission.WEBHOOKS_MANAGE)
        owner_id = owner
    types = _types(event_types)
    await check_target(config, url)
    secret = signing.new_secret()
    await _ping(config, url, secret)
    async with uow:
        repo = uow.get(WebhookRepository)
        if owner_id != caller.client_id and not await repo.client_exists(owner_id):
            raise Invalid(
                f"Client {owner_id!r} does not exist.",
                code="unknown_client",
                fields=[FieldProblem(("body", "owner"), "Not a client id.")],
            )
        unit_id = None
        if unit is not None:
            found = await uow.get(ClientUnits).by_ref(unit)
            if found is None:
                raise Invalid(
                    f"Unit {unit!r} does not exist.",
                    code="unknown_unit",
                    fields=[FieldProblem(("body", "unit"), "Not a unit key.")],
                )
            unit_id = found.id
        sub = WebhookSubscription(
            owner_client_id=owner_id,
            url=url,
            description=description,
            event_types=types,
            unit_id=unit_id,
            unit_key=unit,
            secret=config.sealer.seal_secret(secret),
            max_concurrency=max_concurrency,
            created_by=caller.client_id,
        )
        uow.get(WebhookRepository).add(sub)
        await uow.get(WebhookRepository).session.flush()
        uow.get(AuditRepository).record(
            caller, "webhook.created", "webhook_subscription", sub.id,
            after={"url": url, "event_types": types, "owner": owner_id},
        )  # fmt: skip
        await uow.commit()
    return Created(sub, secret)


async def get(uow: UnitOfWork, caller: Caller, sub_id: uuid.UUID) -> WebhookSubscription:
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    async with uow:
        return await _own(uow, caller, sub_id)


async def list_subscriptions(
    uow: UnitOfWork, caller: Caller, before_id: uuid.UUID | None, limit: int
) -> Sequence[WebhookSubscription]:
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    owner = None if caller.can(Permission.WEBHOOKS_MANAGE) else caller.client_id
    async with uow:
        return await uow.get(WebhookRepository).list(owner, before_id, limit)


async def delete(uow: UnitOfWork, caller: Caller, sub_id: uuid.UUID) -> None:
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    async with uow:
        sub = await _own(uow, caller, sub_id, for_update=True)
        sub.deleted_at = uow.now()
        sub.enabled = False
        await uow.get(WebhookRepository).session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == sub.id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
            .values(status=DeliveryStatus.FAILED.value, last_error="Subscription deleted.")
        )
        uow.get(AuditRepository).record(caller, "webhook.deleted", "webhook_subscription", sub.id)
        await uow.commit()


async def rotate_secret(
    uow: UnitOfWork, caller: Caller, sealer: KeySealer, sub_id: uuid.UUID, overlap_hours: float
) -> Created:
    """A new secret signs from now on; the old one signs beside it for ``overlap_hours``."""
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    async with uow:
        sub = await _own(uow, caller, sub_id, for_update=True)
        repo = uow.get(WebhookRepository)
        secret = signing.new_secret()
        if overlap_hours > 0:
            sub.previous_secret = sub.secret
            # The database's clock: the worker that signs compares against real time.
            expires = await repo.session.scalar(select(func.now() + timedelta(hours=overlap_hours)))
            sub.previous_secret_expires_at = expires
        else:
            sub.previous_secret, sub.previous_secret_expires_at = None, None
        sub.secret = sealer.seal_secret(secret)
        uow.get(AuditRepository).record(
            caller, "webhook.secret_rotated", "webhook_subscription", sub.id,
            after={"overlap_hours": overlap_hours},
        )  # fmt: skip
        await uow.commit()
    return Created(sub, secret)


async def reseal_secrets(uow: UnitOfWork, actor: Caller, sealer: KeySealer) -> list[str]:
    """Seal every subscription's secrets under the sealer's current passphrase (the old one
    given as previous); return the ids of the subscriptions changed."""
    actor.require(Permission.WEBHOOKS_MANAGE)
    changed: list[str] = []
    async with uow:
        subs = (
            await uow.get(WebhookRepository).session.scalars(
                select(WebhookSubscription)
                .where(WebhookSubscription.deleted_at.is_(None))
                .order_by(WebhookSubscription.id)
                .with_for_update()
            )
        ).all()
        for sub in subs:
            what = f"webhook subscription {sub.id}"
            resealed = sealer.reseal_secret(what, sub.secret)
            previous = sub.previous_secret and sealer.reseal_secret(what, sub.previous_secret)
            if resealed is not None:
                sub.secret = resealed
            if previous:
                sub.previous_secret = previous
            if resealed is not None or previous:
                changed.append(str(sub.id))
        if changed:
            uow.get(AuditRepository).record(
                actor, "webhook.secrets_resealed", "webhook_subscription", ",".join(changed)
            )
        await uow.commit()
    return changed


async def enable(uow: UnitOfWork, caller: Caller, sub_id: uuid.UUID) -> WebhookSubscription:
    """Send again to an endpoint that was disabled; what waited is sent now."""
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    async with uow:
        sub = await _own(uow, caller, sub_id, for_update=True)
        sub.enabled, sub.disabled_at, sub.disabled_reason, sub.failing_since = (
            True,
            None,
            None,
            None,
        )
        repo = uow.get(WebhookRepository)
        await repo.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == sub.id,
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
            )
            .values(next_attempt_at=func.now())
        )
        await _wake(uow, sub.id)
        uow.get(AuditRepository).record(caller, "webhook.enabled", "webhook_subscription", sub.id)
        await uow.commit()
    return sub


async def _wake(uow: UnitOfWork, sub_id: uuid.UUID) -> None:
    session = uow.get(WebhookRepository).session
    job = await session.run_sync(lambda s: wake_delivery_job(s, sub_id))
    session.info.setdefault(OUTBOX_HANDOVERS, []).append(job)


async def deliveries(
    uow: UnitOfWork, caller: Caller, sub_id: uuid.UUID, before_id: uuid.UUID | None, limit: int
) -> Sequence[tuple[WebhookAttempt, str]]:
    """The delivery log, newest attempt first."""
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    async with uow:
        await _own(uow, caller, sub_id)
        return await uow.get(WebhookRepository).attempts(sub_id, before_id, limit)


async def replay(
    uow: UnitOfWork,
    caller: Caller,
    sub_id: uuid.UUID,
    *,
    event_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> int:
    """Send one event again, or every event of a time range the subscription received,
    under the same ``webhook-id`` (receivers drop what they have already)."""
    caller.require(Permission.WEBHOOKS_SUBSCRIBE)
    async with uow:
        sub = await _own(uow, caller, sub_id)
        repo = uow.get(WebhookRepository)
        if event_id is not None:
            delivered = await repo.session.scalar(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.subscription_id == sub.id,
                    WebhookDelivery.event_id == event_id,
                )
            )
            if delivered is None:
                raise NotFound(
                    f"Event {event_id} was never this subscription's.",
                    code="webhook_event_not_found",
                )
            ids = [event_id]
        else:
            if since is None or until is None or since >= until:
                raise Invalid(
                    "Name an event, or a time range (since before until).",
                    code="invalid_replay",
                    fields=[FieldProblem(("body",), "event_id, or since and until.")],
                )
            # Only events it received already: their scope was checked when they occurred.
            events = await repo.events_between(since, until, 10_000)
            received = (
                set(
                    (
                        await repo.session.scalars(
                            select(WebhookDelivery.event_id).where(
                                WebhookDelivery.subscription_id == sub.id,
                                WebhookDelivery.event_id.in_([e.id for e in events]),
                            )
                        )
                    ).all()
                )
                if events
                else set()
            )
            ids = [e.id for e in events if e.id in received]
        if not sub.enabled:
            raise Conflict("Enable the subscription before replaying.", code="webhook_disabled")
        count = await repo.requeue(sub.id, ids)
        if count:
            await _wake(uow, sub.id)
        uow.get(AuditRepository).record(
            caller, "webhook.replayed", "webhook_subscription", sub.id, after={"events": count}
        )
        await uow.commit()
    return count
