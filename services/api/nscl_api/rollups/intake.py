"""/v1/national-intake: what provinces' own instances send the national instance.

A province's instance pushes each published provincial rollup here (its totals, the run's
id, seq and fingerprint) as the province's client; the national rollup combines the latest
one of each province. Operators list what each province sent.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import Field

from nscl_api.conditional import monitor_link, sends
from nscl_api.deps import JobsReader, ReportsWriter, UowDep
from nscl_api.errors import responses
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.types import IndicatorKey, ProgrammeKey, Quantity, RequestModel, ResponseModel
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound
from nscl_domain.rollups import intake
from nscl_domain.rollups.models import NationalIntake
from nscl_domain.types import IsoDateTime

router = APIRouter(prefix="/v1/national-intake", tags=["national-intake"])
Year = Annotated[int, Path(ge=2000, le=2100)]


class IntakeCellIn(RequestModel):
    """One total of the province's run: an indicator (and disaggregation) over every unit."""

    indicator: IndicatorKey = Field(max_length=100)
    disaggregation: str = Field(
        default="", max_length=200, description='"dimension=value" pairs joined by ";"; "" total.'
    )
    value: Quantity = Field(max_digits=24, decimal_places=4)
    value_sum: Quantity = Field(max_digits=24, decimal_places=4)
    value_count: int = Field(ge=0, le=2_000_000_000)
    value_min: Quantity = Field(max_digits=20, decimal_places=4)
    value_max: Quantity = Field(max_digits=20, decimal_places=4)


class IntakeCreate(RequestModel):
    """A province's published run, as its own instance sends it."""

    run_id: uuid.UUID = Field(description="The run's id on the province's instance.")
    seq: int = Field(ge=1, le=2_000_000_000, description="The run's number in its year there.")
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")
    computed_at: IsoDateTime
    cells: list[IntakeCellIn] = Field(max_length=50_000)


class IntakeRead(ResponseModel):
    """A submission a province's instance sent, and whether its run is the one published."""

    id: uuid.UUID
    programme: ProgrammeKey
    year: int
    run_id: uuid.UUID = Field(
        description="The province's run; the run published here has the same id."
    )
    seq: int
    fingerprint: str
    computed_at: IsoDateTime
    cells: int
    received_at: IsoDateTime
    received_by: str = Field(description="The client that sent it.")
    status: Literal["current", "superseded"] = Field(
        description="current: its run is the one published; superseded: a later one is."
    )

    @classmethod
    def of(cls, row: NationalIntake, programme: str, *, current: bool) -> IntakeRead:
        return cls(
            id=row.id,
            programme=programme,
            year=row.year,
            run_id=row.run_id,
            seq=row.seq,
            fingerprint=row.fingerprint,
            computed_at=row.computed_at,
            cells=row.cells,
            received_at=row.received_at,
            received_by=row.received_by,
            status="current" if current else "superseded",
        )


class IntakeList(ResponseModel):
    items: list[IntakeRead]


REPEATED: dict[int | str, dict[str, Any]] = {
    200: {"model": IntakeRead, "description": "The run was received already: its submission."}
}


@router.post(
    "/{programme}/{year}",
    status_code=201,
    operation_id="receiveProvincialRollup",
    openapi_extra=sends("Link"),
    dependencies=[IDEMPOTENT],
    summary="Receive a province's published figures",
    responses={**responses(Invalid, NotFound, Forbidden, Conflict), **REPEATED},
)
async def receive_provincial_rollup(
    programme: str,
    year: Year,
    body: IntakeCreate,
    uow: UowDep,
    caller: ReportsWriter,
    response: Response,
) -> IntakeRead:
    """Keep a province's published run and publish its figures as the provincial
    programme's run of the year here; the national refresh is queued at once (`Link`,
    rel `monitor`). Only the client of the unit that owns the provincial programme sends
    it. A run already received answers 200 with its submission; a run whose `seq` is not
    later than the latest received answers 409 `intake_outdated`."""
    received = await intake.receive(
        uow,
        caller,
        programme,
        year,
        intake.Submission(
            run_id=body.run_id,
            seq=body.seq,
            fingerprint=body.fingerprint,
            computed_at=body.computed_at,
            cells=[
                intake.IntakeCell(
                    indicator=c.indicator,
                    disaggregation=c.disaggregation,
                    value=c.value,
                    value_sum=c.value_sum,
                    value_count=c.value_count,
                    value_min=c.value_min,
                    value_max=c.value_max,
                )
                for c in body.cells
            ],
        ),
    )
    if not received.created:
        response.status_code = 200
    if received.refresh_job is not None:
        response.headers["Link"] = monitor_link(received.refresh_job.id)
    return IntakeRead.of(received.intake, received.programme_key, current=received.current)


@router.get(
    "/{programme}/{year}",
    operation_id="listProvincialSubmissions",
    summary="List what a province's instance sent",
    responses=responses(Invalid, NotFound),
)
async def list_provincial_submissions(
    programme: str, year: Year, uow: UowDep, caller: JobsReader
) -> IntakeList:
    """Every run the province's instance sent for the year, the latest first: who sent it,
    when, the province's run id, seq and fingerprint, and whether it is the one published."""
    rows = await intake.list_intakes(uow, caller, programme, year)
    return IntakeList(
        items=[IntakeRead.of(v.intake, v.programme_key, current=v.current) for v in rows]
    )
