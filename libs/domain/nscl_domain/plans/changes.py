"""Use cases of changes to an accepted plan: a unit proposes new content with its reason,
DOST approves (the proposal becomes the plan's next version) or rejects it, or the unit
withdraws it; every decision stays in the plan's history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.plans import models as m
from nscl_domain.plans.models import ChangeRequestStatus
from nscl_domain.plans.repository import PlanRepository
from nscl_domain.plans.service import check_against_catalogue, parse_content, refresh_rollup
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import (
    ReviewStatus,
    check_acting_on,
    check_four_eyes,
    check_reviewer,
    read_scope,
    unit_work_scope,
)

Decision = Literal["approve", "reject"]


def _plans(uow: UnitOfWork) -> PlanRepository:
    return uow.get(PlanRepository)


async def propose_change(
    uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID, *, reason: str, raw: dict[str, Any]
) -> m.PlanChangeRequest:
    """A unit proposes new content for its accepted plan, with the reason for the change."""
    caller.require(Permission.PLANS_WRITE)
    content = parse_content(raw, at=("body", "content"))
    async with uow:
        repo = _plans(uow)
        plan = await repo.plan(plan_id, await unit_work_scope(uow, caller), for_update=True)
        await check_acting_on(uow, caller, plan)
        if plan.status != ReviewStatus.ACCEPTED or plan.accepted_version_no is None:
            raise Conflict(
                f"A {plan.status} plan is still edited directly; changes are requested "
                "to an accepted plan.",
                code="plan_not_accepted",
            )
        await check_against_catalogue(uow, plan, content, ("body", "content"))
        open_request = await repo.open_change_request(plan.id)
        if open_request is not None:
            raise Conflict(
                f"Change request {open_request} awaits DOST's decision; withdraw it or wait.",
                code="change_request_open",
            )
        request = m.PlanChangeRequest(
            plan_id=plan.id,
            status=ChangeRequestStatus.PROPOSED,
            reason=reason,
            proposed_content=content.model_dump(mode="json"),
            base_version_no=plan.accepted_version_no,
            proposed_by=caller.client_id,
            proposed_at=uow.now(),
        )
        repo.add(request)
        await repo.flush()
        uow.get(AuditRepository).record(
            caller, "plan.change_proposed", "plan_change_request", request.id,
            after={"plan": str(plan.id), "reason": reason},
        )  # fmt: skip
        await uow.commit()
    return request


async def _request(
    uow: UnitOfWork, request_id: uuid.UUID, scope: uuid.UUID | None
) -> tuple[m.PlanChangeRequest, m.Plan]:
    found = await _plans(uow).change_request_for_update(request_id, scope)
    if found is None:
        raise NotFound(
            f"Change request {request_id} does not exist.", code="change_request_not_found"
        )
    return found


def _still_open(request: m.PlanChangeRequest) -> None:
    if request.status != ChangeRequestStatus.PROPOSED:
        raise Conflict(
            f"The change request was already {request.status}.", code="change_request_closed"
        )


async def decide_change(
    uow: UnitOfWork,
    reviewer: Caller,
    request_id: uuid.UUID,
    *,
    decision: Decision,
    note: str,
) -> tuple[m.PlanChangeRequest, m.Plan]:
    """DOST approves (the proposal becomes the plan's next version) or rejects it; either
    way the decision, its author and note stay on the request."""
    reviewer.require(Permission.PLANS_REVIEW)
    async with uow:
        await check_reviewer(uow, reviewer)
        request, plan = await _request(uow, request_id, None)
        _still_open(request)
        waived = await check_four_eyes(
            uow, reviewer, plan.programme_id, request.proposed_by, "change request"
        )
        now = uow.now()
        if decision == "approve":
            if plan.accepted_version_no != request.base_version_no:
                raise Conflict(
                    "The plan changed since the request was made; it cannot be approved.",
                    code="change_request_stale",
                )
            repo = _plans(uow)
            version = m.PlanVersion(
                plan_id=plan.id,
                version_no=await repo.latest_version_no(plan.id) + 1,
                kind="change",
                content=request.proposed_content,
                change_request_id=request.id,
                created_at=now,
                created_by=reviewer.client_id,
            )
            repo.add(version)
            plan.content = request.proposed_content
            plan.accepted_version_no = version.version_no
            plan.accepted_at = now
            plan.changed(now)
            request.resulting_version_no = version.version_no
            await refresh_rollup(uow, reviewer, plan)
        request.status = (
            ChangeRequestStatus.APPROVED if decision == "approve" else ChangeRequestStatus.REJECTED
        )
        request.decided_by = reviewer.client_id
        request.decided_at = now
        request.decision_note = note
        uow.get(AuditRepository).record(
            reviewer, f"plan.change_{request.status}", "plan_change_request", request.id,
            after={
                "plan": str(plan.id), "version": request.resulting_version_no, "note": note,
                **({"four_eyes_waived": True} if waived else {}),
            },
        )  # fmt: skip
        await uow.commit()
    return request, plan


async def withdraw_change(
    uow: UnitOfWork, caller: Caller, request_id: uuid.UUID
) -> m.PlanChangeRequest:
    """The proposing unit takes back a request DOST has not decided on."""
    caller.require(Permission.PLANS_WRITE)
    async with uow:
        request, plan = await _request(uow, request_id, caller.unit_id)
        await check_acting_on(uow, caller, plan)
        _still_open(request)
        request.status = ChangeRequestStatus.WITHDRAWN
        request.decided_by = caller.client_id
        request.decided_at = uow.now()
        uow.get(AuditRepository).record(
            caller, "plan.change_withdrawn", "plan_change_request", request.id
        )
        await uow.commit()
    return request


async def list_change_requests(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    plan_id: uuid.UUID | None,
    status: ChangeRequestStatus | None,
    unit: str | None = None,
    subtree: bool = False,
    offset: int,
    limit: int,
) -> Sequence[tuple[m.PlanChangeRequest, m.Plan, str]]:
    """Change requests across the programme (DOST consolidates them), newest first."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        return await _plans(uow).change_requests(
            programme.id,
            unit_scope=await read_scope(uow, caller),
            plan_id=plan_id,
            status=status,
            unit=unit,
            subtree=subtree,
            offset=offset,
            limit=limit,
        )
