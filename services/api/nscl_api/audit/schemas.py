"""Request and response bodies of the audit routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from nscl_api.types import ResponseModel, UnitKey
from nscl_domain.audit.models import AuditEvent


class AuditEventRead(ResponseModel):
    """One change: who (client and unit), when, what, and the object before and after."""

    id: uuid.UUID
    occurred_at: datetime
    client_id: str
    unit: UnitKey | None = Field(description="The unit the client acted for.")
    action: str = Field(examples=["org_unit.updated"])
    object_type: str = Field(examples=["org_unit"])
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventRead:
        return cls(
            id=event.id,
            occurred_at=event.occurred_at,
            client_id=event.client_id,
            unit=event.unit_key,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            before=event.before,
            after=event.after,
            request_id=event.request_id,
        )
