"""Request and response bodies of the audit routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from nscl_api.types import ResponseModel
from nscl_domain.audit.models import AuditEvent


class AuditEventRead(ResponseModel):
    """One change: who (client and unit), when, what, and the object before and after."""

    id: uuid.UUID
    occurred_at: datetime
    client_id: str
    unit_key: str | None
    action: str = Field(examples=["org_unit.updated"])
    object_type: str = Field(examples=["org_unit"])
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventRead:
        return cls.model_validate(event, from_attributes=True)
