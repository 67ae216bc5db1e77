"""Budget estimates, their routing, dossiers for Finance and Planning and Investment."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from nscl_api.conditional import IfMatch, etag, expected_revision
from nscl_api.deps import (
    AllocationsWriter,
    BudgetReader,
    BudgetReviewer,
    BudgetWriter,
    DossiersReader,
    UowDep,
)
from nscl_api.errors import responses
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.jobs.schemas import JOB_QUEUED, JobRead
from nscl_api.pagination import Page
from nscl_api.types import Reason, RequestModel
from nscl_domain.budget import service as budget
from nscl_domain.budget.models import BudgetEstimate, DossierStatus
from nscl_domain.budget.service import DossierView, EstimateView, LineInput
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from nscl_domain.types import STORED, IsoDate
from nscl_domain.workflow import Action, ReviewStatus

router = APIRouter(tags=["budget"])
CHANGE_ERRORS = responses(NotFound, Conflict, PreconditionFailed, Invalid, Forbidden, 428)
Year = Annotated[int, Query(ge=2000, le=2100)]


class EstimateCreate(RequestModel):
    budget_year: int = Field(ge=2000, le=2100)


class EstimateLines(RequestModel):
    lines: list[LineInput] = Field(max_length=2000)


class LineRead(LineInput):
    id: uuid.UUID
    position: int
    destination_unit_id: uuid.UUID | None = Field(
        description="Set at submission by the routing of the budget year; null: other sources."
    )


class EstimateRead(BaseModel):
    id: uuid.UUID
    unit_id: uuid.UUID
    budget_year: int
    status: ReviewStatus
    revision: int
    total: int = Field(description="Sum of the lines, whole đồng.")
    returned_reason: str | None
    submitted_at: datetime | None
    accepted_at: datetime | None
    lines: list[LineRead]

    @classmethod
    def of(cls, view: EstimateView) -> EstimateRead:
        e = view.estimate
        return cls(
            id=e.id,
            unit_id=e.unit_id,
            budget_year=e.budget_year,
            status=e.status,
            revision=e.revision,
            total=view.total,
            returned_reason=e.returned_reason,
            submitted_at=e.submitted_at,
            accepted_at=e.accepted_at,
            # Stored lines were checked when written: reading them back checks nothing again.
            lines=[
                LineRead.model_validate(
                    {
                        "id": line.id,
                        "position": line.position,
                        "destination_unit_id": line.destination_unit_id,
                        "task": line.task_key,
                        "activity": line.activity,
                        "amount": line.amount,
                        "funding_source": line.funding_source,
                        "chapter": line.chapter,
                        "loai_khoan": line.loai_khoan,
                        "muc_tieu_muc": line.muc_tieu_muc,
                    },
                    context=STORED,
                )
                for line in view.lines
            ],
        )


class TotalRow(BaseModel):
    funding_source: str
    destination: str | None = Field(description="Unit key; null: other sources, routed to neither.")
    unit: str
    task_group: int = Field(description="0: lines not tied to a task.")
    amount: int
    lines: int


class BuildRequest(RequestModel):
    budget_year: int = Field(ge=2000, le=2100)


class AllocationRead(BaseModel):
    id: uuid.UUID = Field(description="Record spending against this id.")
    line_id: uuid.UUID
    amount: int


class DossierRead(BaseModel):
    """A dossier: frozen totals by unit, task group and funding source, and its lines."""

    id: uuid.UUID
    budget_year: int
    destination_unit_key: str
    version_no: int
    status: DossierStatus
    total: int
    document: dict[str, Any]
    built_at: datetime
    sent_at: datetime | None
    acknowledged_at: datetime | None
    allocations: list[AllocationRead] = Field(default_factory=list)


class Acknowledgement(RequestModel):
    allocations: dict[str, int] = Field(description="Line id → allocated whole đồng.")


def _dossier(view: DossierView) -> DossierRead:
    d = view.dossier
    return DossierRead(
        id=d.id,
        budget_year=d.budget_year,
        destination_unit_key=view.destination.key,
        version_no=d.version_no,
        status=d.status,
        total=d.total,
        document=d.document,
        built_at=d.built_at,
        sent_at=d.sent_at,
        acknowledged_at=d.acknowledged_at,
        allocations=[
            AllocationRead(id=a.id, line_id=a.line_id, amount=a.amount) for a in view.allocations
        ],
    )


@router.post(
    "/v1/programmes/{programme}/budget-estimates",
    status_code=201,
    operation_id="createBudgetEstimate",
    dependencies=[IDEMPOTENT],
    summary="Open a budget estimate",
    responses=responses(NotFound, Conflict, Invalid),
)
async def create_estimate(
    programme: str, body: EstimateCreate, uow: UowDep, caller: BudgetWriter, response: Response
) -> EstimateRead:
    """Open the unit's estimate for a budget year."""
    view = await budget.create_estimate(uow, caller, programme, budget_year=body.budget_year)
    response.headers["ETag"] = etag(view.estimate.revision)
    response.headers["Location"] = f"/v1/budget-estimates/{view.estimate.id}"
    return EstimateRead.of(view)


@router.get(
    "/v1/budget-estimates/{estimate_id}",
    operation_id="getBudgetEstimate",
    summary="Get a budget estimate",
    responses=responses(NotFound),
)
async def get_estimate(
    estimate_id: uuid.UUID, uow: UowDep, caller: BudgetReader, response: Response
) -> EstimateRead:
    """An estimate with its lines and, once submitted, where each line goes."""
    view = await budget.get_estimate(uow, caller, estimate_id)
    response.headers["ETag"] = etag(view.estimate.revision)
    return EstimateRead.of(view)


@router.put(
    "/v1/budget-estimates/{estimate_id}/lines",
    operation_id="replaceBudgetEstimateLines",
    summary="Write the estimate's lines",
    responses=CHANGE_ERRORS,
)
async def replace_lines(
    estimate_id: uuid.UUID,
    body: EstimateLines,
    uow: UowDep,
    caller: BudgetWriter,
    response: Response,
    if_match: IfMatch = None,
) -> EstimateRead:
    """Replace the lines (whole đồng; account codes valid in the budget year)."""
    view = await budget.replace_lines(
        uow,
        caller,
        estimate_id,
        [line.model_dump() for line in body.lines],
        expected_revision=expected_revision(if_match, BudgetEstimate.noun),
    )
    response.headers["ETag"] = etag(view.estimate.revision)
    return EstimateRead.of(view)


@router.post(
    "/v1/budget-estimates/{estimate_id}/submission",
    operation_id="submitBudgetEstimate",
    summary="Submit the estimate",
    responses=CHANGE_ERRORS,
)
async def submit_estimate(
    estimate_id: uuid.UUID,
    uow: UowDep,
    caller: BudgetWriter,
    response: Response,
    if_match: IfMatch = None,
) -> EstimateRead:
    """Submit; each line records where the routing of the budget year sends it."""
    view = await budget.submit_estimate(
        uow, caller, estimate_id, expected_revision=expected_revision(if_match, BudgetEstimate.noun)
    )
    response.headers["ETag"] = etag(view.estimate.revision)
    return EstimateRead.of(view)


@router.post(
    "/v1/budget-estimates/{estimate_id}/acceptance",
    operation_id="acceptBudgetEstimate",
    summary="Accept the estimate",
    responses=CHANGE_ERRORS,
)
async def accept_estimate(
    estimate_id: uuid.UUID,
    uow: UowDep,
    reviewer: BudgetReviewer,
    response: Response,
    if_match: IfMatch = None,
) -> EstimateRead:
    """Accept a submitted estimate; accepted lines go into the dossiers."""
    view = await budget.review_estimate(
        uow,
        reviewer,
        estimate_id,
        Action.ACCEPT,
        expected_revision=expected_revision(if_match, BudgetEstimate.noun),
    )
    response.headers["ETag"] = etag(view.estimate.revision)
    return EstimateRead.of(view)


@router.post(
    "/v1/budget-estimates/{estimate_id}/return",
    operation_id="returnBudgetEstimate",
    summary="Return the estimate",
    responses=CHANGE_ERRORS,
)
async def return_estimate(
    estimate_id: uuid.UUID,
    body: Reason,
    uow: UowDep,
    reviewer: BudgetReviewer,
    response: Response,
    if_match: IfMatch = None,
) -> EstimateRead:
    """Return a submitted estimate to its unit with the reason."""
    view = await budget.review_estimate(
        uow,
        reviewer,
        estimate_id,
        Action.RETURN,
        expected_revision=expected_revision(if_match, BudgetEstimate.noun),
        reason=body.reason,
    )
    response.headers["ETag"] = etag(view.estimate.revision)
    return EstimateRead.of(view)


@router.get(
    "/v1/programmes/{programme}/budget-totals",
    operation_id="getBudgetTotals",
    summary="Budget totals of a year",
    responses=responses(NotFound),
)
async def budget_totals(
    programme: str, budget_year: Year, uow: UowDep, reviewer: BudgetReviewer
) -> Page[TotalRow]:
    """Accepted estimates by funding source × destination × unit × task group."""
    rows = await budget.totals(uow, reviewer, programme, budget_year)
    return Page[TotalRow](items=[TotalRow.model_validate(r) for r in rows])


@router.post(
    "/v1/programmes/{programme}/budget-dossiers/builds",
    status_code=202,
    operation_id="buildBudgetDossiers",
    dependencies=[IDEMPOTENT],
    summary="Build the year's dossiers",
    responses={**responses(NotFound, Invalid), **JOB_QUEUED},
)
async def build_dossiers(
    programme: str, body: BuildRequest, uow: UowDep, reviewer: BudgetReviewer, response: Response
) -> JobRead:
    """Queue the job that builds a new dossier version per destination whose lines changed."""
    job = await budget.request_dossier_build(uow, reviewer, programme, body.budget_year)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobRead.of(job)


@router.get(
    "/v1/programmes/{programme}/budget-dossiers",
    operation_id="listBudgetDossiers",
    summary="List a year's dossiers",
    responses=responses(NotFound),
)
async def list_dossiers(
    programme: str, budget_year: Year, uow: UowDep, caller: DossiersReader
) -> Page[DossierRead]:
    """Dossiers of a budget year: Finance and Planning and Investment see their own only."""
    rows = await budget.list_dossiers(uow, caller, programme, budget_year)
    return Page[DossierRead](items=[_dossier(view) for view in rows])


@router.get(
    "/v1/budget-dossiers/{dossier_id}",
    operation_id="getBudgetDossier",
    summary="Get a dossier",
    responses=responses(NotFound),
)
async def get_dossier(dossier_id: uuid.UUID, uow: UowDep, caller: DossiersReader) -> DossierRead:
    """A dossier with the allocations recorded against its lines."""
    return _dossier(await budget.get_dossier(uow, caller, dossier_id))


@router.post(
    "/v1/budget-dossiers/{dossier_id}/sending",
    operation_id="sendBudgetDossier",
    summary="Send a dossier",
    responses=responses(NotFound, Conflict),
)
async def send_dossier(dossier_id: uuid.UUID, uow: UowDep, reviewer: BudgetReviewer) -> DossierRead:
    """DOST sends the dossier to Finance or Planning and Investment."""
    return _dossier(await budget.send_dossier(uow, reviewer, dossier_id))


@router.post(
    "/v1/budget-dossiers/{dossier_id}/acknowledgement",
    operation_id="acknowledgeBudgetDossier",
    summary="Acknowledge a dossier and allocate",
    responses=responses(NotFound, Conflict, Invalid),
)
async def acknowledge_dossier(
    dossier_id: uuid.UUID, body: Acknowledgement, uow: UowDep, caller: AllocationsWriter
) -> DossierRead:
    """The destination acknowledges the dossier and records the allocation per line."""
    return _dossier(await budget.acknowledge_dossier(uow, caller, dossier_id, body.allocations))


class SpendingCreate(RequestModel):
    amount: int = Field(gt=0, le=10**15, strict=True, description="Whole đồng.")
    spent_on: IsoDate
    note: str = Field(default="", max_length=2000)


class SpendingRead(BaseModel):
    id: uuid.UUID
    allocation_id: uuid.UUID
    amount: int
    spent_on: datetime
    note: str


class FollowUpRow(BaseModel):
    """Where the money of a task stands: estimated, allocated, spent (whole đồng)."""

    task: str | None
    unit: str
    estimated: int
    allocated: int
    spent: int


@router.post(
    "/v1/budget-allocations/{allocation_id}/spending",
    status_code=201,
    operation_id="recordSpending",
    dependencies=[IDEMPOTENT],
    summary="Record spending against an allocation",
    responses=responses(NotFound, Conflict, Invalid),
)
async def record_spending(
    allocation_id: uuid.UUID, body: SpendingCreate, uow: UowDep, caller: BudgetWriter
) -> SpendingRead:
    """Record money spent by the unit against what was allocated to its line."""
    spending = await budget.record_spending(
        uow, caller, allocation_id, amount=body.amount, spent_on=body.spent_on, note=body.note
    )
    return SpendingRead.model_validate(spending, from_attributes=True)


@router.get(
    "/v1/programmes/{programme}/budget-follow-up",
    operation_id="getBudgetFollowUp",
    summary="Estimate, allocation and spending per task",
    responses=responses(NotFound),
)
async def budget_follow_up(
    programme: str, budget_year: Year, uow: UowDep, caller: BudgetReader
) -> Page[FollowUpRow]:
    """Follow each task's money from estimate to allocation to spending."""
    rows = await budget.follow_up(uow, caller, programme, budget_year)
    return Page[FollowUpRow](items=[FollowUpRow.model_validate(r) for r in rows])
