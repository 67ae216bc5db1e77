"""Use cases of budgets: estimates, their routing, dossiers for Finance and Planning and
Investment, allocations."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.budget import models as m
from nscl_domain.budget.visibility import budget_visibility
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName
from nscl_domain.jobs.registry import JobContext, Location, requester_of
from nscl_domain.rollups.triggers import refresh_later
from nscl_domain.types import InputModel
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Edit, Review, ReviewStatus, Submit, load

FundingSource = Literal[
    "recurrent_science",
    "recurrent_sector",
    "development_investment",
    "other_enterprise",
    "other_sponsorship",
    "other",
]
# Routing is data: a funding source names the programme role whose holder receives it.
ROLE_RECEIVING: dict[str, str | None] = {
    "recurrent_science": "recurrent_estimate_recipient",
    "recurrent_sector": "recurrent_estimate_recipient",
    "development_investment": "investment_estimate_recipient",
    "other_enterprise": None,
    "other_sponsorship": None,
    "other": None,
}
Amount = Annotated[
    StrictInt,
    Field(
        ge=0,
        le=m.MAX_AMOUNT,
        description="Whole đồng (VND has no minor unit).",
        examples=[150_000_000],
    ),
]


class LineInput(InputModel):
    """One line of an estimate as a unit writes it."""

    task: str | None = Field(default=None, max_length=100, description="Programme task key.")
    activity: str = Field(min_length=1, max_length=2000)
    amount: Amount
    funding_source: FundingSource
    chapter: str | None = Field(default=None, max_length=20, description="Chương.")
    loai_khoan: str | None = Field(default=None, max_length=20, description="Loại–Khoản.")
    muc_tieu_muc: str | None = Field(default=None, max_length=20, description="Mục–Tiểu mục.")


async def lines_of(uow: UnitOfWork, estimate_id: uuid.UUID) -> Sequence[m.EstimateLine]:
    stmt = (
        select(m.EstimateLine)
        .where(m.EstimateLine.estimate_id == estimate_id)
        .order_by(m.EstimateLine.position)
        # Lines just written are in the session without their task key: load it afresh.
        .execution_options(populate_existing=True)
    )
    return (await uow.session.scalars(stmt)).all()


@dataclass(frozen=True)
class EstimateView:
    estimate: m.BudgetEstimate
    lines: Sequence[m.EstimateLine]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


async def create_estimate(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, budget_year: int
) -> EstimateView:
    """Open the unit's estimate for a budget year (one per unit and year)."""
    caller.require(Permission.BUDGET_WRITE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        check_budget_year(programme, budget_year, ("body", "budget_year"))
        exists = await uow.session.scalar(
            select(m.BudgetEstimate.id).where(
                m.BudgetEstimate.programme_id == programme.id,
                m.BudgetEstimate.unit_id == caller.unit_id,
                m.BudgetEstimate.budget_year == budget_year,
            )
        )
        if exists is not None:
            raise Conflict(
                f"The unit already has an estimate for {budget_year}.", code="estimate_exists"
            )
        estimate = m.BudgetEstimate(
            programme_id=programme.id,
            unit_id=caller.unit_id,
            budget_year=budget_year,
            status=ReviewStatus.DRAFT,
        )
        uow.session.add(estimate)
        await uow.session.flush()
        uow.audit.record(
            caller, "estimate.created", "budget_estimate", estimate.id, after=snapshot(estimate)
        )
        await uow.commit()
    return EstimateView(estimate, [])


async def get_estimate(uow: UnitOfWork, caller: Caller, estimate_id: uuid.UUID) -> EstimateView:
    """An estimate with its lines, if the caller's unit may see it."""
    caller.require(Permission.BUDGET_READ)
    async with uow:
        estimate = await load(
            uow.session, m.BudgetEstimate, estimate_id, budget_visibility(caller).estimate_scope
        )
        return EstimateView(estimate, await lines_of(uow, estimate.id))


def parse_lines(raw: Sequence[dict[str, Any]]) -> list[LineInput]:
    """Validate every line, naming each bad field (money: whole đồng, 0 to 10^15)."""
    problems: list[FieldProblem] = []
    parsed: list[LineInput] = []
    for index, item in enumerate(raw):
        try:
            parsed.append(LineInput.model_validate(item))
        except ValidationError as exc:
            problems += FieldProblem.all_of(exc, ("body", "lines", index))
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the lines.", code="invalid_lines", fields=problems
        )
    return parsed


async def _estimate_view(uow: UnitOfWork, estimate: m.BudgetEstimate) -> EstimateView:
    return EstimateView(estimate, await lines_of(uow, estimate.id))


async def _write_lines(
    uow: UnitOfWork, estimate: m.BudgetEstimate, lines: Sequence[LineInput]
) -> None:
    """Check tasks and account codes for the budget year, then put the lines in place."""
    tasks = await _task_ids(uow, estimate.programme_id)
    problems = [
        FieldProblem(("body", "lines", i, "task"), f"No task {line.task!r} in the programme.")
        for i, line in enumerate(lines)
        if line.task is not None and line.task not in tasks
    ]
    problems += await _account_code_problems(uow, lines, estimate.budget_year)
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the lines.", code="invalid_lines", fields=problems
        )
    for old in await lines_of(uow, estimate.id):
        await uow.session.delete(old)
    await uow.session.flush()
    for position, line in enumerate(lines, start=1):
        uow.session.add(
            m.EstimateLine(
                estimate_id=estimate.id,
                position=position,
                task_id=tasks[line.task] if line.task else None,
                activity=line.activity,
                amount=line.amount,
                funding_source=line.funding_source,
                chapter=line.chapter,
                loai_khoan=line.loai_khoan,
                muc_tieu_muc=line.muc_tieu_muc,
            )
        )
    await uow.session.flush()


replace_lines = Edit(
    m.BudgetEstimate,
    Permission.BUDGET_WRITE,
    "estimate.lines_replaced",
    parse=parse_lines,
    write=_write_lines,
    audited=lambda _, lines: {"lines": len(lines), "total": sum(line.amount for line in lines)},
    view=_estimate_view,
)
"""Replace the draft's lines after checking tasks and account codes for its budget year."""


async def _task_ids(uow: UnitOfWork, programme_id: uuid.UUID) -> dict[str, uuid.UUID]:
    stmt = (
        select(cm.Task.key, cm.Task.id)
        .join(cm.TaskGroup, cm.TaskGroup.id == cm.Task.group_id)
        .where(cm.TaskGroup.programme_id == programme_id)
    )
    return dict((await uow.session.execute(stmt)).all())


async def _account_code_problems(
    uow: UnitOfWork, lines: Sequence[LineInput], year: int
) -> list[FieldProblem]:
    wanted = {
        (kind, code)
        for line in lines
        for kind, code in (
            ("chapter", line.chapter),
            ("loai_khoan", line.loai_khoan),
            ("muc_tieu_muc", line.muc_tieu_muc),
        )
        if code is not None
    }
    if not wanted:
        return []
    stmt = select(m.AccountCode.kind, m.AccountCode.code).where(
        m.AccountCode.valid_from_year <= year,
        or_(m.AccountCode.valid_to_year.is_(None), m.AccountCode.valid_to_year >= year),
    )
    valid = {(kind, code) for kind, code in (await uow.session.execute(stmt)).all()}
    return [
        FieldProblem(
            ("body", "lines", i, kind),
            f"{code!r} is not a valid {kind} code in budget year {year}.",
            "invalid_account_code",
        )
        for i, line in enumerate(lines)
        for kind, code in (
            ("chapter", line.chapter),
            ("loai_khoan", line.loai_khoan),
            ("muc_tieu_muc", line.muc_tieu_muc),
        )
        if code is not None and (kind, code) not in valid
    ]


def routing_day(budget_year: int) -> date:
    """Routing follows the structure on the first day of the budget year."""
    return date(budget_year, 1, 1)


async def destinations(
    uow: UnitOfWork, programme_id: uuid.UUID, budget_year: int
) -> dict[str, uuid.UUID]:
    """Role → the unit holding it on the routing day of the budget year."""
    day = routing_day(budget_year)
    stmt = select(cm.ProgrammeRole.role, cm.ProgrammeRole.unit_id).where(
        cm.ProgrammeRole.programme_id == programme_id,
        cm.ProgrammeRole.role.in_(
            ["recurrent_estimate_recipient", "investment_estimate_recipient"]
        ),
        cm.ProgrammeRole.valid_from <= day,
        or_(cm.ProgrammeRole.valid_to.is_(None), cm.ProgrammeRole.valid_to > day),
    )
    return dict((await uow.session.execute(stmt)).all())


async def _route(
    uow: UnitOfWork, caller: Caller, estimate: m.BudgetEstimate, now: datetime
) -> Sequence[m.EstimateLine]:
    """Each line records the destination the routing of the budget year gives it now."""
    lines = await lines_of(uow, estimate.id)
    if not lines:
        raise Invalid("An estimate needs at least one line.", code="estimate_empty")
    receivers = await destinations(uow, estimate.programme_id, estimate.budget_year)
    for line in lines:
        role = ROLE_RECEIVING[line.funding_source]
        line.destination_unit_id = receivers.get(role) if role else None
        if role is not None and line.destination_unit_id is None:
            raise Conflict(
                f"No unit holds the {role} role on {routing_day(estimate.budget_year)}.",
                code="no_destination",
            )
    return lines


async def _submitted_view(
    uow: UnitOfWork, estimate: m.BudgetEstimate, _: Sequence[m.EstimateLine]
) -> EstimateView:
    # Read again: the flush expired the lines' computed task keys.
    return await _estimate_view(uow, estimate)


submit_estimate = Submit(
    m.BudgetEstimate,
    Permission.BUDGET_WRITE,
    prepare=_route,
    audited=lambda _, lines: {"lines": len(lines)},
    view=_submitted_view,
)
"""Submit the estimate; each line records the destination the routing gives it now."""


async def _estimate_accepted(uow: UnitOfWork, reviewer: Caller, estimate: m.BudgetEstimate) -> None:
    # The year's rollup sets accepted estimates beside what was reported.
    await refresh_later(
        uow, estimate.programme_id, estimate.budget_year, requested_by=reviewer.client_id
    )


review_estimate = Review(
    m.BudgetEstimate,
    Permission.BUDGET_REVIEW,
    scope=lambda reviewer: budget_visibility(reviewer).estimate_scope,
    view=_estimate_view,
    audited=lambda _, reason: {"reason": reason},
    accepted=_estimate_accepted,
)
"""Accept an estimate, or return it to its unit with the reason."""


# --- totals and dossiers -------------------------------------------------------------------


_TOTALS = """
SELECT l.funding_source, d.key AS destination, u.key AS unit, coalesce(g.number, 0) AS task_group,
       sum(l.amount)::bigint AS amount, count(*) AS lines
FROM estimate_line l
JOIN budget_estimate e ON e.id = l.estimate_id
JOIN org_unit u ON u.id = e.unit_id
LEFT JOIN org_unit d ON d.id = l.destination_unit_id
LEFT JOIN task t ON t.id = l.task_id
LEFT JOIN task_group g ON g.id = t.group_id
WHERE e.programme_id = :programme_id AND e.budget_year = :year AND e.status = 'accepted'
GROUP BY l.funding_source, d.key, u.key, g.number
ORDER BY l.funding_source, d.key NULLS LAST, u.key, task_group
"""


async def request_dossier_build(
    uow: UnitOfWork, reviewer: Caller, programme_ref: str, budget_year: int
) -> Any:
    """Queue the job that builds the budget year's dossiers; return the job."""
    reviewer.require(Permission.BUDGET_REVIEW)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        args = BuildDossiersArgs(programme_id=programme.id, budget_year=budget_year)
        await check_dossier_build(uow.session, args, ("body",))
        job = await uow.schedule(
            JobName.BUILD_DOSSIERS,
            args.model_dump(mode="json"),
            dedup_key=f"dossiers:{programme.id}:{budget_year}",
            requested_by=reviewer.client_id,
        )
        uow.audit.record(
            reviewer, "dossiers.build_requested", "job", job.id, after={"budget_year": budget_year}
        )
        await uow.commit()
    return job


async def totals(
    uow: UnitOfWork, caller: Caller, programme_ref: str, budget_year: int
) -> list[dict[str, Any]]:
    """Accepted estimates totalled by funding source × destination × unit × task group;
    other sources have no destination."""
    caller.require(Permission.BUDGET_REVIEW)
    visibility = budget_visibility(caller)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        rows = await uow.session.execute(
            text(_TOTALS), {"programme_id": programme.id, "year": budget_year}
        )
        return [
            dict(row._mapping) for row in rows if visibility.shows_row(row.unit, row.destination)
        ]


class BuildDossiersArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID
    budget_year: int = Field(ge=2000, le=2100)


def check_budget_year(programme: cm.Programme, budget_year: int, at: Location) -> None:
    """Budgets are estimated, routed and built only for the years the programme runs."""
    if not programme.start_year <= budget_year <= programme.end_year:
        raise Invalid(
            f"The programme runs {programme.start_year}–{programme.end_year}.",
            code="year_outside_programme",
            fields=[FieldProblem(at, "Outside the programme.")],
        )


async def check_dossier_build(session: AsyncSession, args: BuildDossiersArgs, at: Location) -> None:
    """The programme exists and runs in the budget year (the validator of the build job)."""
    programme = await session.get(cm.Programme, args.programme_id)
    if programme is None:
        raise Invalid(
            f"Programme {args.programme_id} does not exist.",
            code="unknown_programme",
            fields=[FieldProblem((*at, "programme_id"), "No such programme.")],
        )
    check_budget_year(programme, args.budget_year, (*at, "budget_year"))


async def build_dossiers(ctx: JobContext, args: BuildDossiersArgs) -> dict[str, Any]:
    """Build, per destination, a new dossier version of the accepted lines routed to it;
    a destination whose lines did not change keeps its latest version."""
    session = ctx.session
    stmt = (
        select(m.EstimateLine, m.BudgetEstimate, cm.OrgUnit)
        .join(m.BudgetEstimate, m.BudgetEstimate.id == m.EstimateLine.estimate_id)
        .join(cm.OrgUnit, cm.OrgUnit.id == m.BudgetEstimate.unit_id)
        .where(
            m.BudgetEstimate.programme_id == args.programme_id,
            m.BudgetEstimate.budget_year == args.budget_year,
            m.BudgetEstimate.status == "accepted",
            m.EstimateLine.destination_unit_id.is_not(None),
        )
        .order_by(cm.OrgUnit.key, m.EstimateLine.position)
    )
    by_destination: dict[uuid.UUID, list[tuple[m.EstimateLine, cm.OrgUnit]]] = defaultdict(list)
    for line, _, unit in (await session.execute(stmt)).all():
        assert line.destination_unit_id is not None
        by_destination[line.destination_unit_id].append((line, unit))
    groups = {
        t.id: g.number
        for t, g in (
            await session.execute(
                select(cm.Task, cm.TaskGroup).join(
                    cm.TaskGroup, cm.TaskGroup.id == cm.Task.group_id
                )
            )
        ).all()
    }
    built = []
    actor = await requester_of(ctx)
    audit = AuditRepository(session)
    for destination, rows in sorted(by_destination.items(), key=lambda kv: str(kv[0])):
        document = _dossier_document(rows, groups)
        latest = (
            await session.scalars(
                select(m.Dossier)
                .where(
                    m.Dossier.programme_id == args.programme_id,
                    m.Dossier.budget_year == args.budget_year,
                    m.Dossier.destination_unit_id == destination,
                )
                .order_by(m.Dossier.version_no.desc())
                .limit(1)
            )
        ).first()
        if latest is not None and latest.document["fingerprint"] == document["fingerprint"]:
            continue
        dossier = m.Dossier(
            programme_id=args.programme_id,
            budget_year=args.budget_year,
            destination_unit_id=destination,
            version_no=(latest.version_no + 1) if latest else 1,
            status=m.DossierStatus.DRAFT,
            total=document["total"],
            document=document,
        )
        session.add(dossier)
        await session.flush()
        audit.record(
            actor,
            "dossier.built",
            "budget_dossier",
            dossier.id,
            after={
                "job_id": str(ctx.job_id),
                "requested_by": actor.client_id,
                "programme_id": str(args.programme_id),
                "budget_year": args.budget_year,
                "destination_unit_id": str(destination),
                "version_no": dossier.version_no,
                "total": dossier.total,
                "fingerprint": document["fingerprint"],
            },
        )
        built.append(str(dossier.id))
    return {"built": built, "destinations": len(by_destination)}


def _dossier_document(
    rows: Sequence[tuple[m.EstimateLine, cm.OrgUnit]], groups: dict[uuid.UUID, int]
) -> dict[str, Any]:
    by_unit: dict[str, int] = defaultdict(int)
    by_group: dict[str, int] = defaultdict(int)
    by_source: dict[str, int] = defaultdict(int)
    lines = []
    for line, unit in rows:
        group = str(groups[line.task_id]) if line.task_id in groups else "none"
        by_unit[unit.key] += line.amount
        by_group[group] += line.amount
        by_source[line.funding_source] += line.amount
        lines.append(
            {
                "line_id": str(line.id),
                "unit": unit.key,
                "task_group": group,
                "activity": line.activity,
                "amount": line.amount,
                "funding_source": line.funding_source,
                "chapter": line.chapter,
                "loai_khoan": line.loai_khoan,
                "muc_tieu_muc": line.muc_tieu_muc,
            }
        )
    fingerprint = hashlib.sha256(
        "|".join(f"{x['line_id']}:{x['amount']}" for x in lines).encode()
    ).hexdigest()
    return {
        "total": sum(by_unit.values()),
        "by_unit": dict(by_unit),
        "by_task_group": dict(by_group),
        "by_funding_source": dict(by_source),
        "lines": lines,
        "fingerprint": fingerprint,
    }


def _dossier_scope(caller: Caller) -> uuid.UUID | None:
    return budget_visibility(caller).destination_scope


async def list_dossiers(
    uow: UnitOfWork, caller: Caller, programme_ref: str, budget_year: int
) -> Sequence[DossierView]:
    """Dossiers of a budget year; Finance and Planning and Investment see their own only."""
    caller.require(Permission.DOSSIERS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        stmt = (
            select(m.Dossier, cm.OrgUnit)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Dossier.destination_unit_id)
            .where(m.Dossier.programme_id == programme.id, m.Dossier.budget_year == budget_year)
            .order_by(cm.OrgUnit.key, m.Dossier.version_no)
        )
        scope = _dossier_scope(caller)
        if scope is not None:
            stmt = stmt.where(m.Dossier.destination_unit_id == scope)
        return [
            DossierView(d, u, await allocations_of(uow, d.id))
            for d, u in (await uow.session.execute(stmt)).all()
        ]


async def _dossier(
    uow: UnitOfWork, caller: Caller, dossier_id: uuid.UUID, *, for_update: bool = False
) -> m.Dossier:
    stmt = select(m.Dossier).where(m.Dossier.id == dossier_id)
    scope = _dossier_scope(caller)
    if scope is not None:
        stmt = stmt.where(m.Dossier.destination_unit_id == scope)
    if for_update:
        stmt = stmt.with_for_update()
    dossier = (
        await uow.session.scalars(stmt, execution_options={"populate_existing": True})
    ).one_or_none()
    if dossier is None:
        raise NotFound(f"Dossier {dossier_id} does not exist.", code="dossier_not_found")
    return dossier


@dataclass(frozen=True)
class DossierView:
    dossier: m.Dossier
    destination: cm.OrgUnit
    allocations: Sequence[m.Allocation]


async def _view(uow: UnitOfWork, dossier: m.Dossier) -> DossierView:
    destination = await uow.session.get(cm.OrgUnit, dossier.destination_unit_id)
    assert destination is not None
    return DossierView(dossier, destination, await allocations_of(uow, dossier.id))


async def get_dossier(uow: UnitOfWork, caller: Caller, dossier_id: uuid.UUID) -> DossierView:
    """A dossier, if addressed to the caller's unit (or the caller reviews or audits)."""
    caller.require(Permission.DOSSIERS_READ)
    async with uow:
        return await _view(uow, await _dossier(uow, caller, dossier_id))


async def send_dossier(uow: UnitOfWork, reviewer: Caller, dossier_id: uuid.UUID) -> DossierView:
    """DOST sends a built dossier to its destination."""
    reviewer.require(Permission.BUDGET_REVIEW)
    async with uow:
        dossier = await _dossier(uow, reviewer, dossier_id, for_update=True)
        if dossier.status != m.DossierStatus.DRAFT:
            raise Conflict(
                f"A {dossier.status} dossier cannot be sent again.", code="dossier_not_draft"
            )
        dossier.status, dossier.sent_at = m.DossierStatus.SENT, uow.now()
        uow.audit.record(reviewer, "dossier.sent", "budget_dossier", dossier.id)
        view = await _view(uow, dossier)
        await uow.commit()
    return view


async def acknowledge_dossier(
    uow: UnitOfWork, caller: Caller, dossier_id: uuid.UUID, allocations: dict[str, int]
) -> DossierView:
    """The destination acknowledges a sent dossier and records what it allocates per line."""
    caller.require(Permission.ALLOCATIONS_WRITE)
    async with uow:
        dossier = await _dossier(uow, caller, dossier_id, for_update=True)
        if dossier.status != m.DossierStatus.SENT:
            raise Conflict(
                f"A {dossier.status} dossier cannot be acknowledged.", code="dossier_not_sent"
            )
        known = {line["line_id"]: line["amount"] for line in dossier.document["lines"]}
        problems = [
            FieldProblem(("body", "allocations", line_id), "Not a line of this dossier.")
            for line_id in allocations
            if line_id not in known
        ]
        problems += [
            FieldProblem(("body", "allocations", line_id), "Whole đồng from 0 to 10^15.")
            for line_id, amount in allocations.items()
            if isinstance(amount, bool)
            or not isinstance(amount, int)
            or not 0 <= amount <= m.MAX_AMOUNT
        ]
        if problems:
            raise Invalid(
                "Some allocations are invalid.", code="invalid_allocations", fields=problems
            )
        rows = [
            m.Allocation(
                dossier_id=dossier.id,
                line_id=uuid.UUID(line_id),
                amount=amount,
                recorded_by=caller.client_id,
            )
            for line_id, amount in allocations.items()
        ]
        uow.session.add_all(rows)
        dossier.status, dossier.acknowledged_at = m.DossierStatus.ACKNOWLEDGED, uow.now()
        dossier.acknowledged_by = caller.client_id
        await uow.session.flush()
        uow.audit.record(
            caller,
            "dossier.acknowledged",
            "budget_dossier",
            dossier.id,
            after={"allocations": len(rows), "allocated": sum(r.amount for r in rows)},
        )
        await refresh_later(
            uow, dossier.programme_id, dossier.budget_year, requested_by=caller.client_id
        )
        view = await _view(uow, dossier)
        await uow.commit()
    return view


async def allocations_of(uow: UnitOfWork, dossier_id: uuid.UUID) -> Sequence[m.Allocation]:
    stmt = select(m.Allocation).where(m.Allocation.dossier_id == dossier_id)
    return (await uow.session.scalars(stmt)).all()


# --- spending and follow-up ----------------------------------------------------------------


async def record_spending(
    uow: UnitOfWork,
    caller: Caller,
    allocation_id: uuid.UUID,
    *,
    amount: int,
    spent_on: date,
    note: str,
) -> m.Spending:
    """The unit that estimated a line records money spent against its allocation."""
    caller.require(Permission.BUDGET_WRITE)
    async with uow:
        stmt = (
            select(m.Allocation, m.BudgetEstimate)
            .join(m.EstimateLine, m.EstimateLine.id == m.Allocation.line_id)
            .join(m.BudgetEstimate, m.BudgetEstimate.id == m.EstimateLine.estimate_id)
            .where(m.Allocation.id == allocation_id, m.BudgetEstimate.unit_id == caller.unit_id)
            .with_for_update(of=m.Allocation)
        )
        found = (await uow.session.execute(stmt)).first()
        if found is None:
            raise NotFound(
                f"Allocation {allocation_id} does not exist.", code="allocation_not_found"
            )
        allocation, estimate = found
        if spent_on.year != estimate.budget_year:
            raise Invalid(
                f"Spending of budget year {estimate.budget_year} happens in that year.",
                code="spending_outside_year",
                fields=[
                    FieldProblem(("body", "spent_on"), f"Must fall in {estimate.budget_year}.")
                ],
            )
        spent = await uow.session.scalar(
            select(func.coalesce(func.sum(m.Spending.amount), 0)).where(
                m.Spending.allocation_id == allocation.id
            )
        )
        if int(spent or 0) + amount > allocation.amount:
            raise Conflict(
                f"Spending would exceed the allocation ({allocation.amount} đồng, "
                f"{spent} spent already).",
                code="allocation_exceeded",
                fields=[FieldProblem(("body", "amount"), "More than what is left.")],
            )
        spending = m.Spending(
            allocation_id=allocation.id,
            amount=amount,
            spent_on=datetime.combine(spent_on, time(), tzinfo=UTC),
            note=note,
            recorded_by=caller.client_id,
        )
        uow.session.add(spending)
        await uow.session.flush()
        uow.audit.record(
            caller, "spending.recorded", "budget_spending", spending.id, after=snapshot(spending)
        )
        dossier = await uow.session.get(m.Dossier, allocation.dossier_id)
        assert dossier is not None  # the allocation's foreign key
        await refresh_later(
            uow, dossier.programme_id, dossier.budget_year, requested_by=caller.client_id
        )
        await uow.commit()
    return spending


_FOLLOW_UP = """
SELECT t.key AS task, u.key AS unit,
       sum(l.amount)::bigint AS estimated,
       coalesce(sum(a.amount), 0)::bigint AS allocated,
       coalesce(sum(s.spent), 0)::bigint AS spent
FROM estimate_line l
JOIN budget_estimate e ON e.id = l.estimate_id
JOIN org_unit u ON u.id = e.unit_id
LEFT JOIN task t ON t.id = l.task_id
LEFT JOIN budget_allocation a ON a.line_id = l.id
LEFT JOIN (SELECT allocation_id, sum(amount) AS spent FROM budget_spending GROUP BY allocation_id) s
       ON s.allocation_id = a.id
WHERE e.programme_id = :programme_id AND e.budget_year = :year AND e.status = 'accepted'
  AND (CAST(:unit_id AS uuid) IS NULL OR e.unit_id = CAST(:unit_id AS uuid))
GROUP BY t.key, u.key
ORDER BY t.key NULLS LAST, u.key
"""


async def follow_up(
    uow: UnitOfWork, caller: Caller, programme_ref: str, budget_year: int
) -> list[dict[str, Any]]:
    """Estimate → allocation → spending per task and unit (a unit sees its own lines)."""
    caller.require(Permission.BUDGET_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        rows = await uow.session.execute(
            text(_FOLLOW_UP),
            {
                "programme_id": programme.id,
                "year": budget_year,
                "unit_id": budget_visibility(caller).estimate_scope,
            },
        )
        return [dict(row._mapping) for row in rows]
