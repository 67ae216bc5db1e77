"""Budget estimates, their routing, dossiers for Finance and Planning and Investment."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from nscl_api.budget.schemas import (
    AccountCodeKind,
    AccountCodeRead,
    Acknowledgement,
    AllocationRead,
    BudgetRouteRead,
    BuildRequest,
    DossierLine,
    DossierRead,
    EstimateCreate,
    EstimateLines,
    EstimateRead,
    FollowUpRow,
    SpendingCreate,
    SpendingRead,
    TotalRow,
)
from nscl_api.conditional import IfMatch, etag, expected_revision, monitor_link, sends
from nscl_api.deps import (
    AllocationsWriter,
    BudgetReader,
    BudgetReviewer,
    BudgetWriter,
    CatalogueReader,
    DossiersReader,
    UowDep,
)
from nscl_api.errors import responses
from nscl_api.exports import (
    SUMMARY_COLUMNS,
    FormatQuery,
    Table,
    export_language,
    export_response,
    export_responses,
    negotiate,
    summary_rows,
    table_of,
)
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.jobs.schemas import JOB_QUEUED, JobRead
from nscl_api.pagination import (
    Cursor,
    Limit,
    Page,
    Subtree,
    UnitFilter,
    bad_cursor,
    before_id_of,
    decode_cursor,
    encode_cursor,
    keyset_page,
    offset_of,
    offset_page,
    split_page,
)
from nscl_api.types import Reason
from nscl_domain.budget import dossiers, estimates, routing, spending
from nscl_domain.budget.models import BudgetEstimate, DossierStatus
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from nscl_domain.workflow import Action, ReviewStatus

router = APIRouter(tags=["budget"])
CHANGE_ERRORS = responses(NotFound, Conflict, PreconditionFailed, Invalid, Forbidden, 428)
Year = Annotated[int, Query(ge=2000, le=2100)]
BudgetYearFilter = Annotated[int | None, Query(ge=2000, le=2100, description="Budget year.")]
ProgrammeFilter = Annotated[
    str | None,
    Query(max_length=100, description="Programme key or id.", examples=["bac-kan-nscl"]),
]


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
    "/v1/budget-estimates",
    operation_id="listBudgetEstimates",
    summary="List budget estimates",
    responses=responses(NotFound, Invalid),
)
async def list_estimates(
    uow: UowDep,
    caller: BudgetReader,
    programme: ProgrammeFilter = None,
    budget_year: BudgetYearFilter = None,
    unit: UnitFilter = None,
    subtree: Subtree = False,
    status: ReviewStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[EstimateRead]:
    """Estimates with their lines, newest first: a unit sees its own, the lead department
    and auditors every unit's (as `getBudgetEstimate`)."""
    rows = await estimates.list_estimates(
        uow, caller, programme=programme, budget_year=budget_year, unit=unit, subtree=subtree,
        status=status, before_id=before_id_of(cursor), limit=limit,
    )  # fmt: skip
    items, next_cursor = keyset_page(rows, limit, lambda view: view.estimate.id)
    return Page[EstimateRead](items=[EstimateRead.of(v) for v in items], next_cursor=next_cursor)


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
    openapi_extra=sends("ETag", "Link"),
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
    """Accept a submitted estimate; accepted lines go into the dossiers. `Link` (rel
    `monitor`) names the job refreshing the year's rollup with it."""
    view, job = await estimates.accept_estimate(
        uow, reviewer, estimate_id,
        expected_revision=expected_revision(if_match, BudgetEstimate.noun),
    )  # fmt: skip
    response.headers["ETag"] = etag(view.estimate.revision)
    response.headers["Link"] = monitor_link(job.id)
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
    response_model=Page[TotalRow],
    responses={**export_responses("The totals (`items`)."), **responses(NotFound)},
)
async def budget_totals(
    programme: str,
    budget_year: Year,
    uow: UowDep,
    reviewer: BudgetReviewer,
    request: Request,
    format: FormatQuery = None,
) -> Any:
    """Accepted estimates by funding source × destination × unit × task group."""
    chosen = negotiate(request, format)
    rows = await dossiers.totals(uow, reviewer, programme, budget_year)
    page = Page[TotalRow](items=[TotalRow.model_validate(r) for r in rows])
    if chosen == "json":
        return page
    items = page.model_dump(mode="json")["items"]
    table = table_of("Tổng hợp dự toán", ("Tổng hợp dự toán", "Budget totals"), TotalRow, items)
    name = f"budget-totals-{programme}-{budget_year}"
    return export_response([table], chosen, export_language(request), name)


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
    summary="List dossiers",
    responses=responses(NotFound, Invalid),
)
async def list_dossiers(
    programme: str,
    uow: UowDep,
    caller: DossiersReader,
    budget_year: BudgetYearFilter = None,
    destination: Annotated[
        str | None,
        Query(max_length=100, description="Destination unit key or id.", examples=["tn-dof"]),
    ] = None,
    status: DossierStatus | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[DossierRead]:
    """Dossiers by budget year, destination and version: Finance and Planning and
    Investment see their own only."""
    offset = offset_of(cursor)
    rows = await dossiers.list_dossiers(
        uow, caller, programme, budget_year, destination=destination, status=status,
        offset=offset, limit=limit,
    )  # fmt: skip
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[DossierRead](
        items=[DossierRead.of(view) for view in items], next_cursor=next_cursor
    )


@router.get(
    "/v1/budget-dossiers/{dossier_id}",
    operation_id="getBudgetDossier",
    summary="Get a dossier",
    response_model=DossierRead,
    responses={
        **export_responses("The dossier; CSV: its lines, XLSX: lines, totals and allocations."),
        **responses(NotFound),
    },
)
async def get_dossier(
    dossier_id: uuid.UUID,
    uow: UowDep,
    caller: DossiersReader,
    request: Request,
    format: FormatQuery = None,
) -> Any:
    """A dossier with the allocations recorded against its lines."""
    chosen = negotiate(request, format)
    read = DossierRead.of(await dossiers.get_dossier(uow, caller, dossier_id))
    if chosen == "json":
        return read
    data = read.model_dump(mode="json")
    document = data["document"]
    totals = [
        {"field": f"{LABELS_BY[kind][0]}: {key}", "field_en": f"{LABELS_BY[kind][1]}: {key}",
         "key": f"{kind}.{key}", "value": amount}
        for kind in ("by_unit", "by_task_group", "by_funding_source")
        for key, amount in document[kind].items()
    ]  # fmt: skip
    fields = ["budget_year", "destination", "version_no", "status", "total", "built_at",
              "sent_at", "acknowledged_at"]  # fmt: skip
    tables = [
        table_of("Các dòng", ("Các dòng của hồ sơ", "Lines"), DossierLine, document["lines"]),
        Table(
            "Tổng hợp", "Tổng hợp", "Summary", SUMMARY_COLUMNS,
            summary_rows(data, fields) + totals,
        ),
        table_of("Phân bổ", ("Phân bổ", "Allocations"), AllocationRead, data["allocations"]),
    ]  # fmt: skip
    name = f"dossier-{data['destination']}-{data['budget_year']}-v{data['version_no']}"
    return export_response(tables, chosen, export_language(request), name)


LABELS_BY = {
    "by_unit": ("Theo đơn vị", "By unit"),
    "by_task_group": ("Theo nhóm nhiệm vụ", "By task group"),
    "by_funding_source": ("Theo nguồn vốn", "By funding source"),
}


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


@router.get(
    "/v1/budget-allocations",
    operation_id="listBudgetAllocations",
    summary="List allocations",
    responses=responses(NotFound, Invalid),
)
async def list_allocations(
    uow: UowDep,
    caller: BudgetReader,
    programme: ProgrammeFilter = None,
    budget_year: BudgetYearFilter = None,
    unit: Annotated[
        str | None, Query(max_length=100, description="Unit whose estimate line it funds.")
    ] = None,
    subtree: Subtree = False,
    destination: Annotated[
        str | None,
        Query(max_length=100, description="Unit that allocated it.", examples=["tn-dof"]),
    ] = None,
    dossier_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AllocationRead]:
    """Allocations newest first: a unit sees those of its lines (to record spending against
    them), the lead department and auditors every one; Finance and Planning and Investment
    read theirs in their dossiers."""
    rows = await spending.list_allocations(
        uow, caller, programme=programme, budget_year=budget_year, unit=unit, subtree=subtree,
        destination=destination, dossier_id=dossier_id, before_id=before_id_of(cursor),
        limit=limit,
    )  # fmt: skip
    items, next_cursor = keyset_page(rows, limit, lambda a: a.id)
    return Page[AllocationRead](
        items=[AllocationRead.of(a) for a in items], next_cursor=next_cursor
    )


@router.get(
    "/v1/budget-spending",
    operation_id="listBudgetSpending",
    summary="List spending",
    responses=responses(NotFound, Invalid),
)
async def list_spending(
    uow: UowDep,
    caller: BudgetReader,
    programme: ProgrammeFilter = None,
    budget_year: BudgetYearFilter = None,
    unit: Annotated[str | None, Query(max_length=100, description="Unit that spent it.")] = None,
    subtree: Subtree = False,
    allocation_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SpendingRead]:
    """Spending newest first, seen as its allocations are (`listBudgetAllocations`)."""
    rows = await spending.list_spending(
        uow, caller, programme=programme, budget_year=budget_year, unit=unit, subtree=subtree,
        allocation_id=allocation_id, before_id=before_id_of(cursor), limit=limit,
    )  # fmt: skip
    items, next_cursor = keyset_page(rows, limit, lambda r: r.id)
    return Page[SpendingRead](
        items=[SpendingRead.model_validate(r, from_attributes=True) for r in items],
        next_cursor=next_cursor,
    )


@router.get(
    "/v1/chart-of-accounts/{budget_year}",
    operation_id="listAccountCodes",
    summary="Chart-of-accounts codes of a budget year",
    responses=responses(Invalid),
)
async def list_account_codes(
    budget_year: Annotated[int, Path(ge=2000, le=2100, examples=[2026])],
    uow: UowDep,
    caller: CatalogueReader,
    kind: AccountCodeKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 500,
    cursor: Cursor = None,
) -> Page[AccountCodeRead]:
    """The codes an estimate line may name in `chapter`, `loai_khoan` and `muc_tieu_muc`
    for the budget year (others are refused), by kind and code. Where a line goes is
    decided by its funding source: see `getBudgetRouting`."""
    rows = await routing.account_codes(
        uow, caller, budget_year, kind=kind, after=_after_code(cursor), limit=limit
    )
    page, more = split_page(rows, limit)
    return Page[AccountCodeRead](
        items=[AccountCodeRead.of(c) for c in page],
        next_cursor=encode_cursor({"after": [page[-1].kind, page[-1].code]}) if more else None,
    )


def _after_code(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    after = decode_cursor(cursor).get("after")
    if (
        not isinstance(after, list)
        or len(after) != 2
        or not all(isinstance(part, str) and len(part) <= 20 for part in after)
    ):
        raise bad_cursor()
    return after[0], after[1]


@router.get(
    "/v1/programmes/{programme}/budget-routing",
    operation_id="getBudgetRouting",
    summary="Where estimate lines go in a budget year",
    responses=responses(NotFound),
)
async def budget_routing(
    programme: str, budget_year: Year, uow: UowDep, caller: CatalogueReader
) -> Page[BudgetRouteRead]:
    """Each funding source, the programme role that receives its lines and the unit holding
    that role on 1 January of the budget year: what a submission records on each line."""
    routes = await routing.routing_of(uow, caller, programme, budget_year)
    return Page[BudgetRouteRead](items=[BudgetRouteRead.of(r) for r in routes])


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
    response_model=Page[FollowUpRow],
    responses={**export_responses("The rows (`items`)."), **responses(NotFound)},
)
async def budget_follow_up(
    programme: str,
    budget_year: Year,
    uow: UowDep,
    caller: BudgetReader,
    request: Request,
    format: FormatQuery = None,
) -> Any:
    """Follow each task's money from estimate to allocation to spending."""
    chosen = negotiate(request, format)
    rows = await spending.follow_up(uow, caller, programme, budget_year)
    page = Page[FollowUpRow](items=[FollowUpRow.model_validate(r) for r in rows])
    if chosen == "json":
        return page
    items = page.model_dump(mode="json")["items"]
    table = table_of("Theo dõi kinh phí", ("Theo dõi kinh phí", "Follow-up"), FollowUpRow, items)
    name = f"budget-follow-up-{programme}-{budget_year}"
    return export_response([table], chosen, export_language(request), name)
