"""Budget estimates, their routing, dossiers for Finance and Planning and Investment."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from nscl_api.budget.schemas import (
    Acknowledgement,
    BuildRequest,
    DossierRead,
    EstimateCreate,
    EstimateLines,
    EstimateRead,
    FollowUpRow,
    SpendingCreate,
    SpendingRead,
    TotalRow,
)
from nscl_api.conditional import IfMatch, etag, expected_revision, sends
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
from nscl_api.types import Reason
from nscl_domain.budget import dossiers, estimates, routing, spending
from nscl_domain.budget.models import BudgetEstimate
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from nscl_domain.workflow import Action

router = APIRouter(tags=["budget"])
CHANGE_ERRORS = responses(NotFound, Conflict, PreconditionFailed, Invalid, Forbidden, 428)
Year = Annotated[int, Query(ge=2000, le=2100)]


@router.post(
    "/v1/programmes/{programme}/budget-estimates",
    status_code=201,
    operation_id="createBudgetEstimate",
    openapi_extra=sends("ETag", "Location"),
    dependencies=[IDEMPOTENT],
    summary="Open a budget estimate",
    responses=responses(NotFound, Conflict, Invalid),
)
async def create_estimate(
    programme: str, body: EstimateCreate, uow: UowDep, caller: BudgetWriter, response: Response
) -> EstimateRead:
    """Open the unit's estimate for a budget year."""
    view = await estimates.create_estimate(uow, caller, programme, budget_year=body.budget_year)
    response.headers["ETag"] = etag(view.estimate.revision)
    response.headers["Location"] = f"/v1/budget-estimates/{view.estimate.id}"
    return EstimateRead.of(view)


@router.get(
    "/v1/budget-estimates/{estimate_id}",
    operation_id="getBudgetEstimate",
    openapi_extra=sends("ETag"),
    summary="Get a budget estimate",
    responses=responses(NotFound),
)
async def get_estimate(
    estimate_id: uuid.UUID, uow: UowDep, caller: BudgetReader, response: Response
) -> EstimateRead:
    """An estimate with its lines and, once submitted, where each line goes."""
    view = await estimates.get_estimate(uow, caller, estimate_id)
    response.headers["ETag"] = etag(view.estimate.revision)
    return EstimateRead.of(view)


@router.put(
    "/v1/budget-estimates/{estimate_id}/lines",
    operation_id="replaceBudgetEstimateLines",
    openapi_extra=sends("ETag"),
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
    view = await estimates.replace_lines(
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
    openapi_extra=sends("ETag"),
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
    view = await routing.submit_estimate(
        uow, caller, estimate_id, expected_revision=expected_revision(if_match, BudgetEstimate.noun)
    )
    response.headers["ETag"] = etag(view.estimate.revision)
    return EstimateRead.of(view)


@router.post(
    "/v1/budget-estimates/{estimate_id}/acceptance",
    operation_id="acceptBudgetEstimate",
    openapi_extra=sends("ETag"),
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
    view = await estimates.review_estimate(
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
    openapi_extra=sends("ETag"),
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
    view = await estimates.review_estimate(
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
    rows = await dossiers.totals(uow, reviewer, programme, budget_year)
    return Page[TotalRow](items=[TotalRow.model_validate(r) for r in rows])


@router.post(
    "/v1/programmes/{programme}/budget-dossiers/builds",
    status_code=202,
    operation_id="buildBudgetDossiers",
    openapi_extra=sends("Location"),
    dependencies=[IDEMPOTENT],
    summary="Build the year's dossiers",
    responses={**responses(NotFound, Invalid), **JOB_QUEUED},
)
async def build_dossiers(
    programme: str, body: BuildRequest, uow: UowDep, reviewer: BudgetReviewer, response: Response
) -> JobRead:
    """Queue the job that builds a new dossier version per destination whose lines changed."""
    job = await dossiers.request_dossier_build(uow, reviewer, programme, body.budget_year)
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
    rows = await dossiers.list_dossiers(uow, caller, programme, budget_year)
    return Page[DossierRead](items=[DossierRead.of(view) for view in rows])


@router.get(
    "/v1/budget-dossiers/{dossier_id}",
    operation_id="getBudgetDossier",
    summary="Get a dossier",
    responses=responses(NotFound),
)
async def get_dossier(dossier_id: uuid.UUID, uow: UowDep, caller: DossiersReader) -> DossierRead:
    """A dossier with the allocations recorded against its lines."""
    return DossierRead.of(await dossiers.get_dossier(uow, caller, dossier_id))


@router.post(
    "/v1/budget-dossiers/{dossier_id}/sending",
    operation_id="sendBudgetDossier",
    summary="Send a dossier",
    responses=responses(NotFound, Conflict),
)
async def send_dossier(dossier_id: uuid.UUID, uow: UowDep, reviewer: BudgetReviewer) -> DossierRead:
    """DOST sends the dossier to Finance or Planning and Investment."""
    return DossierRead.of(await dossiers.send_dossier(uow, reviewer, dossier_id))


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
    return DossierRead.of(
        await dossiers.acknowledge_dossier(uow, caller, dossier_id, body.allocations)
    )


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
    recorded = await spending.record_spending(
        uow, caller, allocation_id, amount=body.amount, spent_on=body.spent_on, note=body.note
    )
    return SpendingRead.model_validate(recorded, from_attributes=True)


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
    rows = await spending.follow_up(uow, caller, programme, budget_year)
    return Page[FollowUpRow](items=[FollowUpRow.model_validate(r) for r in rows])
