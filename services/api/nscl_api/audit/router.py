"""/v1/audit-events: the append-only record of every change, for auditors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from nscl_api.audit.schemas import AuditEventRead
from nscl_api.deps import AuditReader, ResourcesDep, UowDep
from nscl_api.errors import responses
from nscl_api.exports import (
    FormatQuery,
    Table,
    columns_of,
    export_language,
    export_response,
    export_responses,
    negotiate,
)
from nscl_api.pagination import Page, before_id_of, encode_cursor, split_page
from nscl_domain.audit import service as audit
from nscl_domain.errors import Forbidden, Invalid
from nscl_domain.identity import Caller
from nscl_domain.types import IsoDateTime

router = APIRouter(prefix="/v1/audit-events", tags=["audit"])


Filter = Annotated[str | None, Query(max_length=100)]
# Rows read per query of an export: a transaction per chunk, none held while the file is sent.
EXPORT_CHUNK = 2_000


@router.get(
    "",
    operation_id="listAuditEvents",
    summary="List audit events",
    response_model=Page[AuditEventRead],
    responses={
        **export_responses(
            "A page of events; as CSV or XLSX, every event the filters match (from `cursor` "
            "on), newest first, streamed."
        ),
        **responses(Invalid, Forbidden),
    },
)
async def list_audit_events(
    uow: UowDep,
    caller: AuditReader,
    request: Request,
    resources: ResourcesDep,
    object_type: Filter = None,
    object_id: Filter = None,
    client_id: Annotated[str | None, Query(max_length=100, description="The actor.")] = None,
    action: Filter = None,
    since: Annotated[IsoDateTime | None, Query(description="From (inclusive).")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Until (exclusive).")] = None,
    limit: Annotated[
        int, Query(ge=1, le=200, description="Per page of JSON; an export has every event.")
    ] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: FormatQuery = None,
) -> Any:
    """List changes newest first, by object, actor, action and time range."""
    chosen = negotiate(request, format)
    before_id = before_id_of(cursor)
    filters: dict[str, Any] = {
        "object_type": object_type,
        "object_id": object_id,
        "client_id": client_id,
        "action": action,
        "since": since,
        "until": until,
    }
    if chosen != "json":
        # Refused now, as a problem, rather than after the first bytes of the file are sent.
        await audit.list_events(uow, caller, **filters, before_id=before_id, limit=1)
        chunks = _event_chunks(resources, caller, filters, before_id)
        columns = columns_of(AuditEventRead)
        table = Table("Nhật ký", "Nhật ký thay đổi", "Audit trail", columns, chunks=chunks)
        return export_response([table], chosen, export_language(request), "audit-events")
    rows = await audit.list_events(uow, caller, **filters, before_id=before_id, limit=limit)
    page, more = split_page(rows, limit)
    return Page[AuditEventRead](
        items=[AuditEventRead.of(e) for e in page],
        next_cursor=encode_cursor({"before": str(page[-1].id)}) if more else None,
    )


async def _event_chunks(
    resources: Any, caller: Caller, filters: dict[str, Any], before_id: uuid.UUID | None
) -> AsyncIterator[Sequence[dict[str, Any]]]:
    """The matching events, newest first, a chunk per query on the primary key: memory
    holds one chunk, and no transaction stays open while the client reads."""
    while True:
        rows = await audit.list_events(
            resources.new_uow(), caller, **filters, before_id=before_id, limit=EXPORT_CHUNK
        )
        page, more = split_page(rows, EXPORT_CHUNK)
        if not page:
            return
        yield [AuditEventRead.of(e).model_dump(mode="json") for e in page]
        if not more:
            return
        before_id = page[-1].id
