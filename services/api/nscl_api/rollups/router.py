"""/v1/rollups: published rollups of accepted reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel

from nscl_api.deps import RollupsReader, UowDep
from nscl_api.errors import responses
from nscl_domain.errors import NotFound
from nscl_domain.rollups import service as rollups

router = APIRouter(prefix="/v1/rollups", tags=["rollups"])


class RollupRead(BaseModel):
    """A published rollup run: totals per indicator, and the versions they came from."""

    run_id: uuid.UUID
    year: int
    computed_at: datetime
    fingerprint: str
    totals: list[dict[str, Any]]
    sources: list[dict[str, Any]]


@router.get(
    "/{programme}/{year}",
    operation_id="getRollup",
    summary="Get the published rollup of a year",
    response_model=RollupRead,
    responses={**responses(NotFound), 304: {"description": "Unchanged since the ETag given."}},
)
async def get_rollup(
    programme: str,
    year: Annotated[int, Path(ge=2000, le=2100)],
    uow: UowDep,
    caller: RollupsReader,
    response: Response,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=200)] = None,
) -> RollupRead | Response:
    """The latest published rollup; poll with If-None-Match to get 304 while unchanged."""
    run = await rollups.latest_run(uow, caller, programme, year)
    tag = f'"{run.id}"'
    if if_none_match == tag:
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return RollupRead(
        run_id=run.id,
        year=run.year,
        computed_at=run.computed_at,
        fingerprint=run.fingerprint,
        totals=run.totals,
        sources=run.sources,
    )
