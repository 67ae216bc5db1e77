"""/v1/clients: the API clients, for those who manage them (created with `nscl clients`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from nscl_api.clients.schemas import ClientRead
from nscl_api.deps import ClientsManager, UowDep
from nscl_api.errors import responses
from nscl_api.pagination import Cursor, Limit, Page, after_key_of, encode_cursor, split_page
from nscl_domain.errors import Invalid
from nscl_domain.identity import Role
from nscl_domain.identity import service as identity

router = APIRouter(prefix="/v1/clients", tags=["clients"])


@router.get(
    "", operation_id="listClients", summary="List API clients", responses=responses(Invalid)
)
async def list_clients(
    uow: UowDep,
    caller: ClientsManager,
    unit: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Only clients acting for this unit (key or id).",
            examples=["tn-xa-cho-don"],
        ),
    ] = None,
    role: Role | None = None,
    enabled: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ClientRead]:
    """Clients in client-id order with their unit, roles and state; never their secrets."""
    rows = await identity.client_page(
        uow, caller, unit=unit, role=role, enabled=enabled, after=after_key_of(cursor),
        limit=limit,
    )  # fmt: skip
    page, more = split_page(rows, limit)
    return Page[ClientRead](
        items=[ClientRead.of(view) for view in page],
        next_cursor=encode_cursor({"after": page[-1].client.client_id}) if more else None,
    )
