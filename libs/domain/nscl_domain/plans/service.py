"""Use cases of plans: open, write, submit and review them as reports are reviewed, and
read their history of frozen versions (changes to an accepted plan: ``plans.changes``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.lifetime import Lifetimes, require_exists_on
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.requests import refresh_later
from nscl_domain.plans import models as m
from nscl_domain.plans.content import PlanContent, planned_totals
from nscl_domain.plans.models import PlanKind
from nscl_domain.plans.repository import PlanRepository
from nscl_domain.types import STORED
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import (
    Action,
    Edit,
    Review,
    ReviewStatus,
    Submit,
    check_acting,
    read_scope,
    unit_work_scope,
)


@dataclass(frozen=True)
class PlanView:
    plan: m.Plan
    unit_key: str
    # Planned outputs per (indicator, year), combined over the activities.
    planned: dict[tuple[str, int], Decimal]


def _plans(uow: UnitOfWork) -> PlanRepository:
    return uow.get(PlanRepository)


async def _view(uow: UnitOfWork, plan: m.Plan) -> PlanView:
    repo = _plans(uow)
    unit_key = await repo.unit_key(plan.unit_id)
    rules = await repo.aggregation_rules(plan.programme_id)
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
    phases = await _plans(uow).phases(programme.id)
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
        repo = _plans(uow)
        programme = await programme_or_404(uow, programme_ref)
        start, end = await _period(uow, programme, kind, start_year)
        await check_acting(uow, caller)
        lifetime = await uow.get(Lifetimes).of(caller.unit_id)
        if lifetime is not None:
            # A plan is made by a unit that exists when the period starts.
            require_exists_on(
                lifetime,
                date(start, 1, 1),
                f"a {kind.replace('_', '-')} plan for {start}–{end}",
                ("body", "start_year"),
            )
        if await repo.plan_of(programme.id, caller.unit_id, kind, start) is not None:
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
        repo.add(plan)
        await repo.flush()
        uow.get(AuditRepository).record(
            caller, "plan.created", "plan", plan.id, after=snapshot(plan)
        )
        view = await _view(uow, plan)
        await uow.commit()
    return view


async def get_plan(uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID) -> PlanView:
    """A plan with its planned outputs, if the caller's unit may see it."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        scope = None if caller.read_scope is None else await unit_work_scope(uow, caller)
        return await _view(uow, await _plans(uow).plan(plan_id, scope))


async def list_plans(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    kind: PlanKind | None,
    year: int | None,
    status: ReviewStatus | None,
    unit: str | None = None,
    subtree: bool = False,
    offset: int,
    limit: int,
) -> Sequence[tuple[m.Plan, str]]:
    """Plans of the programme, each with its unit's key; a reporting unit sees its own."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        return await _plans(uow).plans(
            programme.id,
            unit_scope=await read_scope(uow, caller),
            kind=kind,
            year=year,
            status=status,
            unit=unit,
            subtree=subtree,
            offset=offset,
            limit=limit,
        )


def parse_content(raw: dict[str, Any], *, at: tuple[str, ...] = ("body", "content")) -> PlanContent:
    """The plan content, or Invalid naming each bad field under ``at``."""
    try:
        return PlanContent.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(
            f"The plan content is invalid in {exc.error_count()} place(s).",
            code="invalid_content",
            fields=FieldProblem.all_of(exc, at),
        ) from exc


async def check_against_catalogue(
    uow: UnitOfWork, plan: m.Plan, content: PlanContent, at: tuple[str, ...]
) -> None:
    """Tasks and indicators named must be the programme's; outputs fall in the plan's years."""
    repo = _plans(uow)
    tasks = await repo.task_keys(plan.programme_id)
    indicators = await repo.indicator_keys(plan.programme_id)
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
    await check_against_catalogue(uow, plan, content, ("body", "content"))
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


async def _freeze(uow: UnitOfWork, caller: Caller, plan: m.Plan, now: datetime) -> None:
    """Check the content against the catalogue and freeze it as the next version."""
    content = PlanContent.model_validate(plan.content, context=STORED)
    if not content.activities:
        raise Invalid("A plan needs at least one activity.", code="plan_empty")
    await check_against_catalogue(uow, plan, content, ("body", "content"))
    repo = _plans(uow)
    repo.add(
        m.PlanVersion(
            plan_id=plan.id,
            version_no=await repo.latest_version_no(plan.id) + 1,
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


async def _plan_accepted(uow: UnitOfWork, reviewer: Caller, plan: m.Plan) -> Job | None:
    # Its last submitted version comes into force.
    plan.accepted_version_no = await _plans(uow).latest_version_no(plan.id)
    return await refresh_rollup(uow, reviewer, plan)


review_plan = Review(
    m.Plan,
    Permission.PLANS_REVIEW,
    view=_view,
    audited=lambda plan, reason: {"reason": reason, "version": plan.accepted_version_no},
    accepted=_plan_accepted,
)
"""Accept the submitted plan (its last version comes into force), or return it."""


async def accept_plan(
    uow: UnitOfWork, reviewer: Caller, plan_id: uuid.UUID, *, expected_revision: int
) -> tuple[PlanView, Job | None]:
    """Accept a submitted plan; return it and, for an annual plan, the refresh job that
    will publish the year's rollup with its planned outputs."""
    scheduled: list[Job | None] = []

    async def accepted(uow: UnitOfWork, reviewer: Caller, plan: m.Plan) -> None:
        scheduled.append(await _plan_accepted(uow, reviewer, plan))

    view = await replace(review_plan, accepted=accepted)(
        uow, reviewer, plan_id, Action.ACCEPT, expected_revision=expected_revision
    )
    return view, scheduled[0]


async def refresh_rollup(uow: UnitOfWork, actor: Caller, plan: m.Plan) -> Job | None:
    """Schedule the refresh of the year's rollup if the plan is an annual one."""
    # The year's rollup sets its annual plans' outputs beside what was achieved.
    if plan.kind != "annual":
        return None
    return await refresh_later(
        uow, plan.programme_id, plan.start_year, requested_by=actor.client_id
    )


async def list_versions(
    uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID
) -> Sequence[m.PlanVersion]:
    """The plan's history: every submission and every approved change, oldest first."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        repo = _plans(uow)
        scope = None if caller.read_scope is None else await unit_work_scope(uow, caller)
        await repo.plan(plan_id, scope)
        return await repo.versions(plan_id)


async def get_version(
    uow: UnitOfWork, caller: Caller, plan_id: uuid.UUID, version_no: int
) -> m.PlanVersion:
    """One frozen version of the plan."""
    caller.require(Permission.PLANS_READ)
    async with uow:
        repo = _plans(uow)
        scope = None if caller.read_scope is None else await unit_work_scope(uow, caller)
        await repo.plan(plan_id, scope)
        version = await repo.version(plan_id, version_no)
        if version is None:
            raise NotFound(
                f"Plan {plan_id} has no version {version_no}.", code="plan_version_not_found"
            )
        return version
