"""The one place changes become events: audit events of the transaction, at its commit.

Every use case and job already appends an audit event in the transaction of its change.
Before that transaction commits, this hook turns the audit events whose action the
composition root declared an event (``install``) into ``webhook_event`` rows, gives each
subscription that asked for the type and may read the object a ``webhook_delivery``, and
writes (or joins) the subscription's pending delivery job: all in the same transaction, so
an event exists exactly when its change does. The jobs written here are named in the
session's ``info`` so the unit of work hands them to the queue after the commit.

SQLAlchemy runs the sync Session's events inside the asyncio greenlet, so the hook's
statements are ordinary blocking calls on the transaction's own connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, event, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from nscl_domain.audit.models import AuditEvent
from nscl_domain.db import new_id
from nscl_domain.events import EventType
from nscl_domain.events.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from nscl_domain.identity import Permission, Role, permissions_of
from nscl_domain.identity.models import ApiClient
from nscl_domain.jobs.models import Job
from nscl_domain.uow import OUTBOX_HANDOVERS

DELIVER_JOB = "webhooks.deliver"
_PENDING = "nscl.events.pending"
DELIVERY_JOB_ATTEMPTS = 50


@dataclass(frozen=True)
class EventSpec:
    """What an audit action means to subscribers.

    ``read`` is the permission that reads the object over the API; ``read_all`` the ones
    that read every unit's (without one, a subscriber reads only its own unit's objects);
    ``unit_sql`` finds the object's unit from its id (None: the object is no one unit's,
    and every holder of ``read`` may hear of it). ``fields`` are the audit event's ``after``
    values (ids, keys, numbers: never content) the event carries; ``order_by`` names the
    fields whose values, rather than the object id, order deliveries (a programme-year's
    successive rollup runs).
    """

    type: EventType
    read: Permission
    read_all: frozenset[Permission] = frozenset()
    unit_sql: str | None = None
    link: str = ""
    id_field: str = "id"
    fields: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    subject: Callable[[AuditEvent], str] | None = None


@dataclass
class _Catalogue:
    specs: Mapping[str, EventSpec] = field(default_factory=dict)
    installed: bool = False


_CATALOGUE = _Catalogue()


def install(specs: Mapping[str, EventSpec]) -> None:
    """Declare which audit actions are events (once, from the composition root)."""
    _CATALOGUE.specs = dict(specs)
    if not _CATALOGUE.installed:
        event.listen(Session, "before_flush", _collect)
        event.listen(Session, "before_commit", _emit)
        event.listen(Session, "after_rollback", _forget)
        _CATALOGUE.installed = True


def spec_of(action: str) -> EventSpec | None:
    return _CATALOGUE.specs.get(action)


def _collect(session: Session, _context: object, _instances: object) -> None:
    found = [
        obj for obj in session.new if isinstance(obj, AuditEvent) and obj.action in _CATALOGUE.specs
    ]
    if found:
        session.info.setdefault(_PENDING, []).extend(found)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class _Subscriber:
    id: uuid.UUID
    event_types: frozenset[str]
    subtree: frozenset[uuid.UUID] | None
    owner_unit: uuid.UUID
    permissions: frozenset[Permission]

    def receives(self, spec: EventSpec, unit_id: uuid.UUID | None) -> bool:
        if spec.type.value not in self.event_types or spec.read not in self.permissions:
            return False
        if unit_id is None:
            return True
        if self.subtree is not None and unit_id not in self.subtree:
            return False
        return bool(spec.read_all & self.permissions) or unit_id == self.owner_unit


def _subscribers(session: Session) -> list[_Subscriber]:
    rows = session.execute(
        select(
            WebhookSubscription.id,
            WebhookSubscription.event_types,
            WebhookSubscription.unit_id,
            ApiClient.unit_id,
            ApiClient.roles,
        )
        .join(ApiClient, ApiClient.client_id == WebhookSubscription.owner_client_id)
        .where(
            WebhookSubscription.enabled,
            WebhookSubscription.deleted_at.is_(None),
            ApiClient.enabled,
        )
    ).all()
    found = []
    subtrees: dict[uuid.UUID, frozenset[uuid.UUID]] = {}
    for sub_id, types, root, owner_unit, roles in rows:
        subtree = None
        if root is not None:
            if root not in subtrees:
                subtrees[root] = frozenset(
                    session.scalars(
                        text(
                            "WITH RECURSIVE t(id) AS (SELECT CAST(:root AS uuid) UNION "
                            "SELECT o.id FROM org_unit o JOIN t ON o.parent_id = t.id) "
                            "SELECT id FROM t"
                        ),
                        {"root": root},
                    ).all()
                )
            subtree = subtrees[root]
        granted = permissions_of({Role(r) for r in roles if r in Role.__members__.values()})
        found.append(_Subscriber(sub_id, frozenset(types), subtree, owner_unit, granted))
    return found


def _data(spec: EventSpec, audit: AuditEvent, unit_key: str | None) -> dict[str, Any]:
    after = audit.after or {}
    data: dict[str, Any] = {spec.id_field: audit.object_id}
    if unit_key is not None:
        data["unit"] = unit_key
    for name in spec.fields:
        if name in after:
            data[name] = after[name]
    # No actor: who made a change (another unit's client, for a rollup its changes
    # refreshed) is not the subscriber's to know from an event.
    if spec.link:
        data["links"] = {"self": spec.link.format(id=audit.object_id, **after)}
    return data


def _emit(session: Session) -> None:
    if not session.info.get(_PENDING) and not any(
        isinstance(obj, AuditEvent) for obj in session.new
    ):
        return
    # What was added since the last flush is collected by this flush (the commit's own
    # flush comes after this hook).
    session.flush()
    pending: list[AuditEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    subscribers = _subscribers(session)
    events: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for audit in pending:
        spec = _CATALOGUE.specs[audit.action]
        unit_id: uuid.UUID | None = None
        unit_key: str | None = None
        if spec.unit_sql is not None:
            row = session.execute(text(spec.unit_sql), {"id": audit.object_id}).first()
            if row is not None:
                unit_id, unit_key = row[0], row[1]
        event_id = new_id()
        after = audit.after or {}
        order = ":".join(str(after.get(f, "")) for f in spec.order_by) or audit.object_id
        events.append(
            {
                "id": event_id,
                "type": spec.type.value,
                "object_type": audit.object_type,
                "object_id": audit.object_id,
                "unit_id": unit_id,
                "subject": spec.subject(audit) if spec.subject else audit.object_id,
                "data": _data(spec, audit, unit_key),
                "occurred_at": audit.occurred_at,
            }
        )
        for sub in subscribers:
            if sub.receives(spec, unit_id):
                deliveries.append(
                    {
                        "subscription_id": sub.id,
                        "event_id": event_id,
                        "object_key": f"{audit.object_type}:{order}"[:160],
                    }
                )
    session.execute(insert(WebhookEvent), events)
    if not deliveries:
        return
    session.execute(insert(WebhookDelivery), deliveries)
    for sub_id in {d["subscription_id"] for d in deliveries}:
        job = wake_delivery_job(session, sub_id)
        session.info.setdefault(OUTBOX_HANDOVERS, []).append(job)


def wake_delivery_job(session: Session, subscription_id: uuid.UUID) -> Job:
    """Write the subscription's delivery job, due now, joining its pending one (a pending
    job waiting for a retry is brought forward: a new event may go at once)."""
    stmt = delivery_job_statement(subscription_id, None)
    return session.scalars(stmt, execution_options={"populate_existing": True}).one()


def delivery_job_statement(
    subscription_id: uuid.UUID, when: datetime | None
) -> ReturningInsert[Job]:
    """The subscription's delivery job, due ``when`` (None: now), joining its pending one,
    which keeps the earlier of the two times."""
    excluded = insert(Job).excluded
    return (
        insert(Job)
        .values(
            name=DELIVER_JOB,
            args={"subscription_id": str(subscription_id)},
            dedup_key=f"webhooks:{subscription_id}",
            not_before=when,
            max_attempts=DELIVERY_JOB_ATTEMPTS,
            requested_by="system",
        )
        .on_conflict_do_update(
            index_elements=[Job.name, Job.dedup_key],
            index_where=text("status = 'pending' AND dedup_key IS NOT NULL"),
            set_={
                "not_before": case(
                    (Job.not_before.is_(None) | excluded.not_before.is_(None), None),
                    else_=func.least(Job.not_before, excluded.not_before),
                )
            },
        )
        .returning(Job)
    )
