"""Use cases of plans: write, submit and review them as reports are reviewed; propose
changes to an accepted plan, which DOST approves or rejects, each decision kept in its
history as a new frozen version."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import select

from nscl_domain.audit.repository import snapshot
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.plans import models as m
from nscl_domain.plans.content import PlanContent, planned_totals
from nscl_domain.plans.models import ChangeRequestStatus, PlanKind
from nscl_domain.rollups.triggers import refresh_later
from nscl_domain.types import STORED
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Edit, Review, ReviewStatus, Submit, load

Decision = Literal["approve", "reject"]


@dataclass(frozen=True)
class PlanView:
    plan: m.Plan
    unit_key: str
    # Planned outputs per (indicator, year), combined over the activities.
    planned: dict[tuple[str, int], Decimal]


async def _plan(
    uow: UnitOfWork, plan_id: uuid.UUID, scope: uuid.UUID | None, *, for_update: bool = False
) -> m.Plan:
    return await load(uow.session, m.Plan, plan_id, scope, for_update=for_update)


async def _view(uow: UnitOfWork, plan: m.Plan) -> PlanView:
    unit_key = await uow.session.scalar(select(cm.OrgUnit.key).where(cm.OrgUnit.id == plan.unit_id))
    rules = dict(
        (
            await uow.session.execute(
                select(cm.Indicator.key, cm.Indicator.aggregation_across_units).where(
                    cm.Indicator.programme_id == plan.programme_id
                )
            )
        ).all()
    )
    content = PlanContent.model_validate(plan.content, context=STORED)
    return PlanView(plan, unit_key or "", planned_totals(content, rules))


async def _period(
    uow: UnitOfWork, programme: cm.Programme, kind: PlanKind, start_year: int
) -> tuple[int, int]:
    """The years a plan covers: a phase of the programme, or one year of it."""
    if kind == "annual":
        if not programme.start_year <= start_year <= programme.end_year:
            raise Invalid(
                f"The programme runs {programme.start_year}–{programme.end_year}.",
                code="year_outside_programme",
                fields=[FieldProblem(("body", "start_year"), "Outside the programme.")],
            )
        return start_year, start_year
    phases = (
        await uow.session.execute(
            select(cm.Phase.start_year, cm.Phase.end_year)
            .where(cm.Phase.programme_id == programme.id)
            .order_by(cm.Phase.start_year)
        )
    ).all()
    for start, end in phases:
        if start == start_year:
            return start, end
    starts = ", ".join(str(start) for start, _ in phases)
    raise Invalid(
        f"A five-year plan covers a phase of the programme; phases start in {starts}.",
        code="not_a_phase",
        fields=[FieldProblem(("body", "start_year"), f"Use one of: {starts}.")],
    )


async def create_plan(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, kind: PlanKind, start_year: int
) -> PlanView:
    """Open the unit's plan for a phase (five-year) or a year (annual), as an empty draft."""
    caller.require(Permission.PLANS_WRITE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        start, end = await _period(uow, programme, kind, start_year)
        exists = await uow.session.scalar(
            select(m.Plan.id).where(
                m.Plan.programme_id == programme.id,
                m.Plan.unit_id == caller.unit_id,
                m.Plan.kind == kind,
                m.Plan.start_year == start,
            )
        )
        if exists is not None:
            raise Conflict(
                f"The unit already has a {kind.replace('_', '-')} plan from {start}.",
                code="plan_exists",
            )
        plan = m.Plan(
            programme_id=programme.id,
            unit_id=caller.unit_id,
            kind=kind,
            start_year=start,
            end_year=end,
            status=ReviewStatus.DRAFT,
            content=PlanContent().model_dump(mode="json"),
        )
        uow.session.add(plan)
        await uow.session.flush()
        uow.audit.record(caller, "plan.created", "plan", plan.id, after=snapshot(plan))
        view = await _view(uow, plan)
        await uow.commit()
    return view


async def get_plan(uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID) -> PlanView:
    """A plan with its planned outputs, if the caller's unit may see it."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        return await _view(uow, await _plan(uow, plan_id, caller.read_scope))


async def list_plans(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    kind: PlanKind | None,
    year: int | None,
    status: ReviewStatus | None,
    offset: int,
    limit: int,
) -> Sequence[tuple[m.Plan, str]]:
    """Plans of the programme, each with its unit's key; a reporting unit sees its own."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        stmt = (
            select(m.Plan, cm.OrgUnit.key)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Plan.unit_id)
            .where(m.Plan.programme_id == programme.id)
            .order_by(m.Plan.start_year, m.Plan.kind, cm.OrgUnit.key)
            .offset(offset)
            .limit(limit + 1)
        )
        scope = caller.read_scope
        if scope is not None:
            stmt = stmt.where(m.Plan.unit_id == scope)
        if kind is not None:
            stmt = stmt.where(m.Plan.kind == kind)
        if year is not None:
            stmt = stmt.where(m.Plan.start_year <= year, m.Plan.end_year >= year)
        if status is not None:
            stmt = stmt.where(m.Plan.status == status)
        return [(plan, key) for plan, key in (await uow.session.execute(stmt)).all()]


def parse_content(raw: dict[str, Any], *, at: tuple[str, ...] = ("body", "content")) -> PlanContent:
    try:
        return PlanContent.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(
            f"The plan content is invalid in {exc.error_count()} place(s).",
            code="invalid_content",
            fields=FieldProblem.all_of(exc, at),
        ) from exc


async def _check_against_catalogue(
    uow: UnitOfWork, plan: m.Plan, content: PlanContent, at: tuple[str, ...]
) -> None:
    """Tasks and indicators named must be the programme's; outputs fall in the plan's years."""
    tasks = set(
        (
            await uow.session.scalars(
                select(cm.Task.key)
                .join(cm.TaskGroup, cm.TaskGroup.id == cm.Task.group_id)
                .where(cm.TaskGroup.programme_id == plan.programme_id)
            )
        ).all()
    )
    indicators = set(
        (
            await uow.session.scalars(
                select(cm.Indicator.key).where(cm.Indicator.programme_id == plan.programme_id)
            )
        ).all()
    )
    problems: list[FieldProblem] = []
    for i, activity in enumerate(content.activities):
        where: tuple[str | int, ...] = (*at, "activities", i)
        if activity.task is not None and activity.task not in tasks:
            problems.append(
                FieldProblem((*where, "task"), f"No task {activity.task!r} in the programme.")
            )
        seen: set[tuple[str, int]] = set()
        for j, output in enumerate(activity.planned_outputs):
            out: tuple[str | int, ...] = (*where, "planned_outputs", j)
            if output.indicator not in indicators:
                problems.append(
                    FieldProblem(
                        (*out, "indicator"), f"No indicator {output.indicator!r} in the programme."
                    )
                )
            if not plan.start_year <= output.year <= plan.end_year:
                problems.append(
                    FieldProblem(
                        (*out, "year"), f"The plan covers {plan.start_year}–{plan.end_year}."
                    )
                )
            if (output.indicator, output.year) in seen:
                problems.append(
                    FieldProblem(
                        (*out, "indicator"),
                        f"{output.indicator!r} is planned twice for {output.year} in one activity.",
                        "duplicate_output",
                    )
                )
            seen.add((output.indicator, output.year))
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the plan content.",
            code="invalid_content",
            fields=problems,
        )


async def _write_content(uow: UnitOfWork, plan: m.Plan, content: PlanContent) -> None:
    await _check_against_catalogue(uow, plan, content, ("body", "content"))
    plan.content = content.model_dump(mode="json")


write_content = Edit(
    m.Plan,
    Permission.PLANS_WRITE,
    "plan.content_written",
    parse=parse_content,
    write=_write_content,
    audited=lambda _, content: {"activities": len(content.activities)},
    view=_view,
)
"""Replace a draft's (or returned plan's) content."""


async def _latest_version_no(uow: UnitOfWork, plan_id: uuid.UUID) -> int:
    found = await uow.session.scalar(
        select(m.PlanVersion.version_no)
        .where(m.PlanVersion.plan_id == plan_id)
        .order_by(m.PlanVersion.version_no.desc())
        .limit(1)
    )
    return found or 0


async def _freeze(uow: UnitOfWork, caller: Caller, plan: m.Plan, now: datetime) -> None:
    """Check the content against the catalogue and freeze it as the next version."""
    content = PlanContent.model_validate(plan.content, context=STORED)
    if not content.activities:
        raise Invalid("A plan needs at least one activity.", code="plan_empty")
    await _check_against_catalogue(uow, plan, content, ("body", "content"))
    uow.session.add(
        m.PlanVersion(
            plan_id=plan.id,
            version_no=await _latest_version_no(uow, plan.id) + 1,
            kind="resubmission" if plan.status == ReviewStatus.RETURNED else "submission",
            content=plan.content,
            created_at=now,
            created_by=caller.client_id,
        )
    )


async def _submitted_view(uow: UnitOfWork, plan: m.Plan, _: None) -> PlanView:
    return await _view(uow, plan)


submit_plan = Submit(
    m.Plan,
    Permission.PLANS_WRITE,
    prepare=_freeze,
    audited=lambda plan, _: {"status": plan.status},
    view=_submitted_view,
)
"""Freeze the content as a new version and send it to DOST for review."""


async def _plan_accepted(uow: UnitOfWork, reviewer: Caller, plan: m.Plan) -> None:
    # Its last submitted version comes into force.
    plan.accepted_version_no = await _latest_version_no(uow, plan.id)
    await _refresh_rollup(uow, reviewer, plan)


review_plan = Review(
    m.Plan,
    Permission.PLANS_REVIEW,
    view=_view,
    audited=lambda plan, reason: {"reason": reason, "version": plan.accepted_version_no},
    accepted=_plan_accepted,
)
"""Accept the submitted plan (its last version comes into force), or return it."""


async def _refresh_rollup(uow: UnitOfWork, actor: Caller, plan: m.Plan) -> None:
    # The year's rollup sets its annual plans' outputs beside what was achieved.
    if plan.kind == "annual":
        await refresh_later(uow, plan.programme_id, plan.start_year, requested_by=actor.client_id)


async def list_versions(
    uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID
) -> Sequence[m.PlanVersion]:
    """The plan's history: every submission and every approved change, oldest first."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        await _plan(uow, plan_id, caller.read_scope)
        stmt = (
            select(m.PlanVersion)
            .where(m.PlanVersion.plan_id == plan_id)
            .order_by(m.PlanVersion.version_no)
        )
        return (await uow.session.scalars(stmt)).all()


async def get_version(
    uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID, version_no: int
) -> m.PlanVersion:
    caller.require(Permission.PLANS_READ)
    async with uow:
        await _plan(uow, plan_id, caller.read_scope)
        version = await uow.session.scalar(
            select(m.PlanVersion).where(
                m.PlanVersion.plan_id == plan_id, m.PlanVersion.version_no == version_no
            )
        )
        if version is None:
            raise NotFound(
                f"Plan {plan_id} has no version {version_no}.", code="plan_version_not_found"
            )
        return version


# --- change requests ---------------------------------------------------------------------


async def propose_change(
    uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID, *, reason: str, raw: dict[str, Any]
) -> m.PlanChangeRequest:
    """A unit proposes new content for its accepted plan, with the reason for the change."""
    caller.require(Permission.PLANS_WRITE)
    content = parse_content(raw, at=("body", "content"))
    async with uow:
        plan = await _plan(uow, plan_id, caller.unit_id, for_update=True)
        if plan.status != ReviewStatus.ACCEPTED or plan.accepted_version_no is None:
            raise Conflict(
                f"A {plan.status} plan is still edited directly; changes are requested "
                "to an accepted plan.",
                code="plan_not_accepted",
            )
        await _check_against_catalogue(uow, plan, content, ("body", "content"))
        open_request = await uow.session.scalar(
            select(m.PlanChangeRequest.id).where(
                m.PlanChangeRequest.plan_id == plan.id,
                m.PlanChangeRequest.status == ChangeRequestStatus.PROPOSED,
            )
        )
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
        uow.session.add(request)
        await uow.session.flush()
        uow.audit.record(
            caller, "plan.change_proposed", "plan_change_request", request.id,
            after={"plan": str(plan.id), "reason": reason},
        )  # fmt: skip
        await uow.commit()
    return request


async def _request(
    uow: UnitOfWork, request_id: uuid.UUID, scope: uuid.UUID | None
) -> tuple[m.PlanChangeRequest, m.Plan]:
    stmt = (
        select(m.PlanChangeRequest, m.Plan)
        .join(m.Plan, m.Plan.id == m.PlanChangeRequest.plan_id)
        .where(m.PlanChangeRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if scope is not None:
        stmt = stmt.where(m.Plan.unit_id == scope)
    found = (await uow.session.execute(stmt)).one_or_none()
    if found is None:
        raise NotFound(
            f"Change request {request_id} does not exist.", code="change_request_not_found"
        )
    return found[0], found[1]


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
        request, plan = await _request(uow, request_id, None)
        _still_open(request)
        now = uow.now()
        if decision == "approve":
            if plan.accepted_version_no != request.base_version_no:
                raise Conflict(
                    "The plan changed since the request was made; it cannot be approved.",
                    code="change_request_stale",
                )
            version = m.PlanVersion(
                plan_id=plan.id,
                version_no=await _latest_version_no(uow, plan.id) + 1,
                kind="change",
                content=request.proposed_content,
                change_request_id=request.id,
                created_at=now,
                created_by=reviewer.client_id,
            )
            uow.session.add(version)
            plan.content = request.proposed_content
            plan.accepted_version_no = version.version_no
            plan.accepted_at = now
            plan.changed(now)
            request.resulting_version_no = version.version_no
            await _refresh_rollup(uow, reviewer, plan)
        request.status = (
            ChangeRequestStatus.APPROVED if decision == "approve" else ChangeRequestStatus.REJECTED
        )
        request.decided_by = reviewer.client_id
        request.decided_at = now
        request.decision_note = note
        uow.audit.record(
            reviewer, f"plan.change_{request.status}", "plan_change_request", request.id,
            after={"plan": str(plan.id), "version": request.resulting_version_no, "note": note},
        )  # fmt: skip
        await uow.commit()
    return request, plan


async def withdraw_change(
    uow: UnitOfWork, caller: Caller, request_id: uuid.UUID
) -> m.PlanChangeRequest:
    """The proposing unit takes back a request DOST has not decided on."""
    caller.require(Permission.PLANS_WRITE)
    async with uow:
        request, _ = await _request(uow, request_id, caller.unit_id)
        _still_open(request)
        request.status = ChangeRequestStatus.WITHDRAWN
        request.decided_by = caller.client_id
        request.decided_at = uow.now()
        uow.audit.record(caller, "plan.change_withdrawn", "plan_change_request", request.id)
        await uow.commit()
    return request


async def list_change_requests(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    plan_id: uuid.UUID | None,
    status: ChangeRequestStatus | None,
    offset: int,
    limit: int,
) -> Sequence[tuple[m.PlanChangeRequest, m.Plan, str]]:
    """Change requests across the programme (DOST consolidates them), newest first."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        stmt = (
            select(m.PlanChangeRequest, m.Plan, cm.OrgUnit.key)
            .join(m.Plan, m.Plan.id == m.PlanChangeRequest.plan_id)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Plan.unit_id)
            .where(m.Plan.programme_id == programme.id)
            .order_by(m.PlanChangeRequest.proposed_at.desc(), m.PlanChangeRequest.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
        scope = caller.read_scope
        if scope is not None:
            stmt = stmt.where(m.Plan.unit_id == scope)
        if plan_id is not None:
            stmt = stmt.where(m.Plan.id == plan_id)
        if status is not None:
            stmt = stmt.where(m.PlanChangeRequest.status == status)
        return [(r, p, k) for r, p, k in (await uow.session.execute(stmt)).all()]
