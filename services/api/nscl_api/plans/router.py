"""Plans of the reporting units, their review, history and change requests."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from nscl_api.conditional import IfMatch, etag, expected_revision, sends
from nscl_api.deps import PlansReader, PlansReviewer, PlansWriter, UowDep
from nscl_api.errors import responses
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.pagination import Cursor, Limit, Page, Subtree, UnitFilter, offset_of, offset_page
from nscl_api.plans.schemas import (
    ChangeDecision,
    ChangeRequestCreate,
    ChangeRequestRead,
    PlanContentWrite,
    PlanCreate,
    PlanRead,
    PlanSummary,
    PlanVersionRead,
)
from nscl_api.review import ReviewRoutes
from nscl_api.types import Reason
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from nscl_domain.identity import Caller
from nscl_domain.plans import changes
from nscl_domain.plans import models as m
from nscl_domain.plans import service as plans
from nscl_domain.plans.models import ChangeRequestStatus, PlanKind
from nscl_domain.plans.service import PlanView
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Action, ReviewStatus

router = APIRouter(tags=["plans"])
CHANGE_ERRORS = responses(NotFound, Conflict, PreconditionFailed, Invalid, Forbidden, 428)


def _read(view: PlanView, response: Response) -> PlanRead:
    response.headers["ETag"] = etag(view.plan.revision)
    return PlanRead.of_view(view)


@router.post(
    "/v1/programmes/{programme}/plans",
    status_code=201,
    operation_id="createPlan",
    openapi_extra=sends("ETag", "Location"),
    dependencies=[IDEMPOTENT],
    summary="Open a plan",
    responses=responses(NotFound, Conflict, Invalid),
)
async def create_plan(
    programme: str, body: PlanCreate, uow: UowDep, caller: PlansWriter, response: Response
) -> PlanRead:
    """Open the unit's five-year plan for a phase, or its annual plan for a year."""
    view = await plans.create_plan(
        uow, caller, programme, kind=body.kind, start_year=body.start_year
    )
    response.headers["Location"] = f"/v1/plans/{view.plan.id}"
    return _read(view, response)


@router.get(
    "/v1/programmes/{programme}/plans",
    operation_id="listPlans",
    summary="List plans",
    responses=responses(NotFound, Invalid),
)
async def list_plans(
    programme: str,
    uow: UowDep,
    caller: PlansReader,
    kind: PlanKind | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="Plans covering it.")] = None,
    status: ReviewStatus | None = None,
    unit: UnitFilter = None,
    subtree: Subtree = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[PlanSummary]:
    """Plans of the programme; a reporting unit sees only its own."""
    offset = offset_of(cursor)
    rows = await plans.list_plans(
        uow, caller, programme, kind=kind, year=year, status=status, unit=unit,
        subtree=subtree, offset=offset, limit=limit,
    )  # fmt: skip
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[PlanSummary](
        items=[PlanSummary.of(plan, unit) for plan, unit in items], next_cursor=next_cursor
    )


@router.get(
    "/v1/plans/{plan_id}",
    operation_id="getPlan",
    openapi_extra=sends("ETag"),
    summary="Get a plan",
    responses=responses(NotFound),
)
async def get_plan(
    plan_id: uuid.UUID, uow: UowDep, caller: PlansReader, response: Response
) -> PlanRead:
    """The plan's working content, its planned outputs per indicator and year, its status."""
    return _read(await plans.get_plan(uow, caller, plan_id), response)


@router.put(
    "/v1/plans/{plan_id}/content",
    operation_id="writePlanContent",
    openapi_extra=sends("ETag"),
    summary="Write the plan's content",
    responses=CHANGE_ERRORS,
)
async def write_content(
    plan_id: uuid.UUID,
    body: PlanContentWrite,
    uow: UowDep,
    caller: PlansWriter,
    response: Response,
    if_match: IfMatch = None,
) -> PlanRead:
    """Replace the activities of a draft or returned plan (tasks and indicators checked)."""
    view = await plans.write_content(
        uow,
        caller,
        plan_id,
        body.content.model_dump(mode="json"),
        expected_revision=expected_revision(if_match, m.Plan.noun),
    )
    return _read(view, response)


async def _return_plan(
    uow: UnitOfWork, reviewer: Caller, plan_id: uuid.UUID, *, expected_revision: int, reason: str
) -> PlanView:
    return await plans.review_plan(
        uow, reviewer, plan_id, Action.RETURN, expected_revision=expected_revision, reason=reason
    )


review = ReviewRoutes[PlanView](
    router, "/v1/plans/{plan_id}", "plan_id", m.Plan.noun, PlanRead, _read, CHANGE_ERRORS
)
review.add(
    "submission", plans.submit_plan, operation_id="submitPlan", summary="Submit the plan",
    doc="Freeze the content as a version and send it to DOST.", caller=PlansWriter,
)  # fmt: skip
review.add(
    "acceptance", plans.accept_plan, operation_id="acceptPlan", summary="Accept the plan",
    doc="""Accept a submitted plan: its last version comes into force. For an annual plan,
    `Link` (rel `monitor`) names the job refreshing the year's rollup with it.""",
    caller=PlansReviewer, monitored=True,
)  # fmt: skip
review.add(
    "return", _return_plan, operation_id="returnPlan", summary="Return the plan",
    doc="Return a submitted plan to its unit with the reason.",
    caller=PlansReviewer, reason=Reason,
)  # fmt: skip


@router.get(
    "/v1/plans/{plan_id}/versions",
    operation_id="listPlanVersions",
    summary="The plan's history",
    responses=responses(NotFound),
)
async def list_versions(
    plan_id: uuid.UUID, uow: UowDep, caller: PlansReader
) -> Page[PlanVersionRead]:
    """Every submission and every approved change, oldest first; each is frozen."""
    versions = await plans.list_versions(uow, caller, plan_id)
    return Page[PlanVersionRead](items=[PlanVersionRead.of(v) for v in versions])


@router.get(
    "/v1/plans/{plan_id}/versions/{version_no}",
    operation_id="getPlanVersion",
    summary="Get a version of the plan",
    responses=responses(NotFound),
)
async def get_version(
    plan_id: uuid.UUID,
    version_no: Annotated[int, Path(ge=1, le=1_000_000)],
    uow: UowDep,
    caller: PlansReader,
) -> PlanVersionRead:
    """One frozen version as it was submitted or changed."""
    return PlanVersionRead.of(await plans.get_version(uow, caller, plan_id, version_no))


@router.post(
    "/v1/plans/{plan_id}/change-requests",
    status_code=201,
    operation_id="proposePlanChange",
    openapi_extra=sends("Location"),
    dependencies=[IDEMPOTENT],
    summary="Propose a change to an accepted plan",
    responses=responses(NotFound, Conflict, Invalid),
)
async def propose_change(
    plan_id: uuid.UUID,
    body: ChangeRequestCreate,
    uow: UowDep,
    caller: PlansWriter,
    response: Response,
) -> ChangeRequestRead:
    """The unit proposes the plan as it should read, and why; DOST decides."""
    request = await changes.propose_change(
        uow, caller, plan_id, reason=body.reason, raw=body.content.model_dump(mode="json")
    )
    response.headers["Location"] = f"/v1/plan-change-requests/{request.id}"
    return ChangeRequestRead.of(request, caller.unit_key)


@router.get(
    "/v1/programmes/{programme}/plan-change-requests",
    operation_id="listPlanChangeRequests",
    summary="List change requests",
    responses=responses(NotFound, Invalid),
)
async def list_change_requests(
    programme: str,
    uow: UowDep,
    caller: PlansReader,
    plan_id: uuid.UUID | None = None,
    status: ChangeRequestStatus | None = None,
    unit: UnitFilter = None,
    subtree: Subtree = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ChangeRequestRead]:
    """Change requests, newest first: DOST consolidates every unit's; a unit sees its own."""
    offset = offset_of(cursor)
    rows = await changes.list_change_requests(
        uow, caller, programme, plan_id=plan_id, status=status, unit=unit, subtree=subtree,
        offset=offset, limit=limit,
    )  # fmt: skip
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[ChangeRequestRead](
        items=[ChangeRequestRead.of(r, unit) for r, _, unit in items], next_cursor=next_cursor
    )


@router.post(
    "/v1/plan-change-requests/{request_id}/decision",
    operation_id="decidePlanChange",
    summary="Approve or reject a change request",
    responses=responses(NotFound, Conflict, Invalid),
)
async def decide_change(
    request_id: uuid.UUID, body: ChangeDecision, uow: UowDep, reviewer: PlansReviewer
) -> ChangeRequestRead:
    """Approve (the proposal becomes the plan's next version) or reject; the note is kept."""
    request, plan = await changes.decide_change(
        uow, reviewer, request_id, decision=body.decision, note=body.note
    )
    view = await plans.get_plan(uow, reviewer, plan.id)
    return ChangeRequestRead.of(request, view.unit_key)


@router.post(
    "/v1/plan-change-requests/{request_id}/withdrawal",
    operation_id="withdrawPlanChange",
    summary="Withdraw a change request",
    responses=responses(NotFound, Conflict),
)
async def withdraw_change(
    request_id: uuid.UUID, uow: UowDep, caller: PlansWriter
) -> ChangeRequestRead:
    """The unit takes back a request DOST has not decided on."""
    request = await changes.withdraw_change(uow, caller, request_id)
    return ChangeRequestRead.of(request, caller.unit_key)
