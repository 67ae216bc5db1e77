"""Reading the audit trail (writing happens inside every other use case)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from nscl_domain.audit.models import AuditEvent
from nscl_domain.audit.repository import AuditRepository
from nscl_domain.identity import Caller, Permission
from nscl_domain.uow import UnitOfWork


async def list_events(
    uow: UnitOfWork,
    caller: Caller,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    client_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: uuid.UUID | None = None,
    limit: int = 50,
) -> Sequence[AuditEvent]:
    """Audit events newest first, filtered; ``limit`` + 1 rows. Auditors only."""
    caller.require(Permission.AUDIT_READ)
    async with uow:
        return await uow.get(AuditRepository).list(
            object_type=object_type,
            object_id=object_id,
            client_id=client_id,
            action=action,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        )
