"""SQL of the audit trail: append and read, nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import inspect, select

from nscl_domain.audit.models import AuditEvent
from nscl_domain.repositories import SessionRepository

# Never copied into the trail.
_SECRET_COLUMNS = frozenset({"secret_hash", "private_pem", "search_text"})


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def snapshot(row: object) -> dict[str, Any]:
    """The row's columns as JSON, secrets left out: the before/after of an audit event."""
    mapper = inspect(row).mapper
    return {
        column.key: _json_value(getattr(row, column.key))
        for column in mapper.column_attrs
        if column.key not in _SECRET_COLUMNS
    }


class Actor(Protocol):
    """Who an event is about: a caller, or the client a job acts for."""

    @property
    def client_id(self) -> str: ...
    @property
    def unit_id(self) -> uuid.UUID | None: ...
    @property
    def unit_key(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...


class AuditRepository(SessionRepository):
    def record(
        self,
        caller: Actor,
        action: str,
        object_type: str,
        object_id: object,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append an event to the transaction in progress: it commits with the change."""
        event = AuditEvent(
            client_id=caller.client_id,
            unit_id=caller.unit_id,
            unit_key=caller.unit_key,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
            request_id=caller.request_id,
        )
        self.session.add(event)
        return event

    async def list(
        self,
        *,
        object_type: str | None,
        object_id: str | None,
        client_id: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[AuditEvent]:
        """Newest first; ids are time-ordered, so keyset pagination runs on the primary key."""
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
        filters = {
            AuditEvent.object_type: object_type,
            AuditEvent.object_id: object_id,
            AuditEvent.client_id: client_id,
            AuditEvent.action: action,
        }
        for column, value in filters.items():
            if value is not None:
                stmt = stmt.where(column == value)
        if since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.occurred_at < until)
        if before_id is not None:
            stmt = stmt.where(AuditEvent.id < before_id)
        return (await self.session.scalars(stmt)).all()
