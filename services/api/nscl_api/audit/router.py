"""/v1/audit-events: the append-only record of every change, for auditors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from nscl_api.audit.schemas import AuditEventRead
from nscl_api.deps import AuditReader, UowDep
from nscl_api.errors import responses
from nscl_api.pagination import Page, before_id_of, encode_cursor, split_page
from nscl_domain.audit import service as audit
from nscl_domain.errors import Forbidden, Invalid
from nscl_domain.types import IsoDateTime

router = APIRouter(prefix="/v1/audit-events", tags=["audit"])


Filter = Annotated[str | None, Query(max_length=100)]


@router.get(
    "",
    operation_id="listAuditEvents",
    summary="List audit events",
    responses=responses(Invalid, Forbidden),
)
async def list_audit_events(
    uow: UowDep,
    caller: AuditReader,
    object_type: Filter = None,
    object_id: Filter = None,
    client_id: Annotated[str | None, Query(max_length=100, description="The actor.")] = None,
    action: Filter = None,
    since: Annotated[IsoDateTime | None, Query(description="From (inclusive).")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Until (exclusive).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AuditEventRead]:
    """List changes newest first, by object, actor, action and time range."""
    before_id = before_id_of(cursor)
    rows = await audit.list_events(
        uow,
        caller,
        object_type=object_type,
        object_id=object_id,
        client_id=client_id,
        action=action,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    page, more = split_page(rows, limit)
    return Page[AuditEventRead](
        items=[AuditEventRead.of(e) for e in page],
        next_cursor=encode_cursor({"before": str(page[-1].id)}) if more else None,
    )
